//! A reference binary started by a fuzz campaign (`--spawn` in the CLI), as a launcher: the
//! campaign starts it, again after it ends or crashes, and watches its process.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sv2_interop::peers::{scratch_dir, PeerProcess};
use sv2_mock::sv1::driver::{spawn as sv1_spawn, Sv1DriverConfig, Sv1Handle};
use sv2_mock::sv1::Sv1Config;
use sv2_scenario::launch::{BoxFuture, Endpoint, Launched, Launcher};

/// A reference binary the campaign started (and, below a translator, the SV1 miner that makes it
/// open its upstream channel).
struct Peer {
    process: PeerProcess,
    below: Option<tokio::task::JoinHandle<Option<Sv1Handle>>>,
}

impl Launched for Peer {
    fn pid(&self) -> Option<u32> {
        Some(self.process.id())
    }

    fn exited(&mut self) -> Option<(bool, String)> {
        use std::os::unix::process::ExitStatusExt;
        let status = self.process.exited()?;
        let crashed = status.signal().is_some() || status.code() == Some(101);
        Some((
            crashed,
            format!("{status}; its last output:\n{}", self.process.log_tail(20)),
        ))
    }

    fn stop(self: Box<Self>) -> BoxFuture<String> {
        Box::pin(async move {
            if let Some(below) = self.below {
                below.abort();
                if let Ok(Some(miner)) = below.await {
                    miner.stop().await;
                }
            }
            let tail = self.process.log_tail(20);
            drop(self.process);
            format!("stopped; its last output:\n{tail}")
        })
    }
}

/// Starts `binary` for the fuzzer's endpoint with the configuration `config` writes (and the SV1
/// port it chose, where an SV1 miner connects once the binary listens there).
pub fn launcher(
    binary: PathBuf,
    name: &'static str,
    config: impl Fn(&Endpoint) -> (String, Option<u16>) + Send + Sync + 'static,
) -> Launcher {
    Launcher::InProcess(Arc::new(move |endpoint: &Endpoint| {
        let dir = scratch_dir(name).expect("a scratch directory");
        let (text, sv1_port) = config(endpoint);
        let process = PeerProcess::start(&binary, &dir, &text).expect("the binary");
        let below = sv1_port.map(|port| {
            tokio::spawn(async move {
                let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                for _ in 0..200 {
                    if tokio::net::TcpStream::connect(address).await.is_ok() {
                        let mut config =
                            Sv1DriverConfig::new(address.to_string(), Sv1Config::default());
                        config.max_shares_per_second = 20;
                        return Some(sv1_spawn(config));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                None
            })
        });
        Box::new(Peer { process, below }) as Box<dyn Launched>
    }))
}
