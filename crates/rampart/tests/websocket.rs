//! WebSocket upgrades pass through the gateway.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::{SinkExt, StreamExt};
use rampart_test_support::{TestGateway, TestUpstream};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn websocket_echo_through_the_gateway() {
    let up = TestUpstream::start().await;
    let yaml = format!(
        "listeners:\n  - {{ name: public, bind: 127.0.0.1:0 }}\nupstreams:\n  app: {{ targets: [\"{}\"] }}\napis:\n  - {{ name: app, upstream: app }}\n",
        up.url()
    );
    let gw = TestGateway::start(&yaml).await;
    let url = format!("ws://{}/ws", gw.addr("public"));
    let (mut ws, rsp) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(rsp.status(), 101);
    for text in ["hello", "through", "rampart"] {
        ws.send(Message::text(text)).await.unwrap();
        let back = ws.next().await.unwrap().unwrap();
        assert_eq!(back.into_text().unwrap().as_str(), text);
    }
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap().into_data().as_ref(),
        &[0u8, 1, 2, 255]
    );
    ws.close(None).await.unwrap();
    gw.shutdown().await;
}
