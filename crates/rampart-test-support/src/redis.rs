//! A real `redis-server` for tests: started on a free loopback port (nothing kept on disk),
//! stopped and restarted at will, killed when dropped. `RAMPART_TEST_REDIS_URL` points
//! [`TestRedis::shared`] at an existing server instead.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::TempDir;

#[derive(Debug)]
pub struct TestRedis {
    port: u16,
    child: Option<Child>,
    dir: TempDir,
    external: Option<String>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestRedis {
    /// A server of this test's own, which it can stop and restart.
    pub fn start() -> Self {
        let mut r = Self {
            port: free_port(),
            child: None,
            dir: TempDir::new("rampart-redis"),
            external: None,
        };
        r.restart();
        r
    }

    /// The server of `RAMPART_TEST_REDIS_URL` when set (it cannot be stopped), else one of
    /// this test's own.
    pub fn shared() -> Self {
        match std::env::var("RAMPART_TEST_REDIS_URL") {
            Ok(url) if !url.is_empty() => Self {
                port: 0,
                child: None,
                dir: TempDir::new("rampart-redis"),
                external: Some(url),
            },
            _ => Self::start(),
        }
    }

    pub fn url(&self) -> String {
        match &self.external {
            Some(u) => u.clone(),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    /// Kills the server (its data goes with it).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port and waits until it answers.
    pub fn restart(&mut self) {
        assert!(
            self.external.is_none(),
            "an external Redis cannot be restarted"
        );
        self.stop();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                &self.dir.path().display().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server; .ci/run installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping() {
                return;
            }
            // Setup only, for a few milliseconds: a test waits for its server before it runs.
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not answer on port {}", self.port);
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 16];
        matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
