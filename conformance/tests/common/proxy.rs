//! Our mock proxy as the implementation under test of the proxy suite, started in process for each
//! check on the suite's {downstream_port}, its upstream the suite.

use std::sync::Arc;
use std::time::Duration;

use sv2_conformance::runner::{CheckResult, Progress};
use sv2_conformance::serve::launch::{BoxFuture, Launched, Launcher};
use sv2_conformance::serve::{runner, Endpoint};
use sv2_conformance::{Role, Selection};
use sv2_mock::pool::driver::NoiseIdentity;
use sv2_mock::proxy::driver::{serve, ProxyServerConfig};
use sv2_mock::proxy::ProxyFaults;
use tokio::sync::oneshot;

struct InProcessProxy {
    task: tokio::task::JoinHandle<String>,
    stop: Option<oneshot::Sender<()>>,
    /// Its downstream port: free again once it has stopped.
    port: u16,
}

impl Launched for InProcessProxy {
    fn exited(&mut self) -> Option<(bool, String)> {
        self.task
            .is_finished()
            .then(|| (false, "the proxy stopped by itself".to_string()))
    }

    fn stop(mut self: Box<Self>) -> BoxFuture<String> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        Box::pin(async move {
            let why = match self.task.await {
                Ok(why) => why,
                Err(e) => format!("the proxy's task: {e}"),
            };
            // Its listener closes on a task of its own: until it has, the next check's devices
            // would find the old proxy listening (a process's ends with it).
            for _ in 0..100 {
                if std::net::TcpListener::bind(("127.0.0.1", self.port)).is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            why
        })
    }
}

/// A launcher that starts our mock proxy, broken by `faults`, for each check.
pub fn proxy_launcher(faults: ProxyFaults) -> Launcher {
    Launcher::InProcess(Arc::new(move |endpoint: &Endpoint| {
        let url: sv2_codec::noise::keys::Sv2Url = endpoint.url.parse().expect("the suite's URL");
        let upstream = url.host_port().parse().expect("a socket address");
        let port = endpoint.downstream_port.expect("a downstream port");
        let mut config = ProxyServerConfig::new(upstream, url.authority_key);
        config.proxy.faults = faults.clone();
        config.noise =
            Some(NoiseIdentity::new(sv2_codec::noise::keys::Keypair::generate().unwrap()).unwrap());
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            // The proxy started before this one may still hold the port for a moment (its
            // listener closes on its own task).
            let mut tries = 0;
            let listener = loop {
                match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                    Ok(l) => break l,
                    Err(_) if tries < 50 => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => return format!("listen on {port}: {e}"),
                }
            };
            let proxy = match serve(listener, config).await {
                Ok(p) => p,
                Err(e) => return e.to_string(),
            };
            tokio::select! {
                why = proxy.ended() => why,
                _ = stopped => "stopped".to_string(),
            }
        });
        Box::new(InProcessProxy {
            task,
            stop: Some(stop),
            port,
        }) as Box<dyn Launched>
    }))
}

/// Runs the proxy checks `only` (all when empty) against our mock proxy broken by `faults`.
pub async fn run_proxy(only: &[&str], faults: ProxyFaults) -> Vec<CheckResult> {
    let selection = Selection {
        only: only.iter().map(|s| s.to_string()).collect(),
    };
    let mut listener = super::device::listener(proxy_launcher(faults));
    // A share comes from a device below the proxy: connections on both sides first.
    listener.work_window = Duration::from_secs(8);
    let report = runner::run(listener, Role::Proxy, &selection, |_: Progress<'_>| {})
        .await
        .expect("the suite listens");
    report.results
}
