//! `rampart bans`: the DDoS guard's bans in a configuration's shared store.

use std::path::Path;
use std::process::ExitCode;

use rampart_stages::ratelimit::Backend;

use crate::BansCommand;

use rampart_stages::ddos::ban_key as key_of;

pub(crate) async fn run(config: &Path, command: BansCommand) -> ExitCode {
    let snapshot = match rampart_config::load_file(config) {
        Ok(s) => s,
        Err(e) => {
            eprint!("{}", e.render());
            return ExitCode::from(2);
        }
    };
    let Some(Backend::Redis(store)) = &snapshot.limit_store else {
        eprintln!(
            "error: {} keeps its bans in the gateway's memory (state.store: memory); `rampart bans` works on a shared store (state.store: redis)",
            config.display()
        );
        return ExitCode::from(2);
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    match command {
        BansCommand::List => match store.stored_bans().await {
            Ok(mut bans) => {
                bans.sort_by_key(|(_, u)| *u);
                let mut out = String::new();
                for (key, until) in bans.iter().filter(|(_, u)| *u > now) {
                    out.push_str(&format!("{key}\t{} s left\n", (until - now).div_ceil(1000)));
                }
                if out.is_empty() {
                    out.push_str("no bans\n");
                }
                crate::print_out(&out);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot read the bans from Redis: {e}");
                ExitCode::from(2)
            }
        },
        BansCommand::Add { target, secs } => {
            let Some(key) = key_of(&target) else {
                eprintln!("error: \"{target}\" is not an address or a network");
                return ExitCode::from(2);
            };
            match store
                .publish_ban_now(&key, now + secs.saturating_mul(1000))
                .await
            {
                Ok(()) => {
                    crate::print_out(&format!("banned {key} for {secs} s on every node\n"));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: cannot reach Redis: {e}");
                    ExitCode::from(2)
                }
            }
        }
        BansCommand::Remove { target } => {
            let Some(key) = key_of(&target) else {
                eprintln!("error: \"{target}\" is not an address or a network");
                return ExitCode::from(2);
            };
            let known = store
                .stored_bans()
                .await
                .map(|b| b.iter().any(|(k, _)| *k == key))
                .unwrap_or(false);
            match store.publish_unban(&key).await {
                Ok(()) if known => {
                    crate::print_out(&format!("lifted the ban on {key} on every node\n"));
                    ExitCode::SUCCESS
                }
                Ok(()) => {
                    eprintln!("{key} is not banned");
                    ExitCode::from(1)
                }
                Err(e) => {
                    eprintln!("error: cannot reach Redis: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
