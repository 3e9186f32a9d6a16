use std::net::SocketAddr;
use std::path::PathBuf;

use rampart_proxy::{Gateway, ReloadOutcome};

use crate::TempDir;

/// The real gateway on loopback, from a YAML string. The YAML is written to a file in a temp
/// dir (relative paths resolve there), so reloads from the file work as in production.
#[derive(Debug)]
pub struct TestGateway {
    pub gateway: Gateway,
    /// The admin listener, when the config has one.
    pub admin: Option<rampart_admin::AdminServer>,
    pub dir: TempDir,
    pub config_path: PathBuf,
}

impl TestGateway {
    /// Starts from `yaml`; panics with the rendered diagnostics if it does not compile.
    pub async fn start(yaml: &str) -> Self {
        Self::start_with(yaml, &[]).await
    }

    /// Starts from `yaml` with `files` (name, contents) written beside it first.
    pub async fn start_with(yaml: &str, files: &[(&str, &str)]) -> Self {
        let dir = TempDir::new("rampart-gw");
        for (name, contents) in files {
            dir.write(name, contents);
        }
        let config_path = dir.write("rampart.yaml", yaml);
        let snapshot = match rampart_config::load_file(&config_path) {
            Ok(s) => s,
            Err(e) => panic!("test config does not compile:\n{}", e.render()),
        };
        let gateway = Gateway::start(snapshot, Some(config_path.clone()))
            .await
            .unwrap();
        let admin = rampart_admin::start(&gateway).await.unwrap();
        Self {
            gateway,
            admin,
            dir,
            config_path,
        }
    }

    /// The admin listener's address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.as_ref().expect("no admin listener").addr()
    }

    pub fn addr(&self, listener: &str) -> SocketAddr {
        self.gateway
            .addr(listener)
            .unwrap_or_else(|| panic!("no listener {listener}"))
    }

    /// `http://addr` of a listener.
    pub fn url(&self, listener: &str, path: &str) -> String {
        format!("http://{}{path}", self.addr(listener))
    }

    /// Rewrites the config file and reloads from it.
    pub async fn reload(&self, yaml: &str) -> ReloadOutcome {
        std::fs::write(&self.config_path, yaml).unwrap();
        self.gateway.reload_file().await
    }

    /// The events database of the running config.
    pub fn events_db(&self) -> Option<PathBuf> {
        self.gateway.snapshot().events.sqlite.clone()
    }

    pub async fn shutdown(self) {
        self.gateway.shutdown().await;
    }
}
