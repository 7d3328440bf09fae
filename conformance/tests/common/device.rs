//! Our SV2 device as the client under test of the device suite, started in process for each check.

use std::sync::Arc;
use std::time::Duration;

use sv2_conformance::runner::{CheckResult, Progress};
use sv2_conformance::serve::launch::{BoxFuture, Launched, Launcher};
use sv2_conformance::serve::{runner, Endpoint, Listener};
use sv2_conformance::{Role, Selection};
use sv2_mock::miner::driver::{spawn, DeviceDriverConfig, DeviceHandle};

struct InProcessDevice {
    handle: DeviceHandle,
}

impl Launched for InProcessDevice {
    fn exited(&mut self) -> Option<(bool, String)> {
        self.handle
            .is_finished()
            .then(|| (false, "the device's run ended".to_string()))
    }

    fn stop(self: Box<Self>) -> BoxFuture<String> {
        Box::pin(async move {
            let report = self.handle.stop().await;
            format!("the device stopped: {:?}", report.outcome)
        })
    }
}

/// A launcher that starts our device for each check, configured by `configure`.
pub fn device_launcher(
    configure: impl Fn(&mut DeviceDriverConfig) + Send + Sync + 'static,
) -> Launcher {
    let configure = Arc::new(configure);
    Launcher::InProcess(Arc::new(move |endpoint: &Endpoint| {
        let url: sv2_codec::noise::keys::Sv2Url = endpoint.url.parse().expect("the suite's URL");
        let mut config = DeviceDriverConfig::new(url.host_port(), url.authority_key);
        config.max_shares_per_second = 50;
        config.timeouts.connect = Duration::from_secs(3);
        configure(&mut config);
        Box::new(InProcessDevice {
            handle: spawn(config),
        }) as Box<dyn Launched>
    }))
}

/// Short waits: loopback and an in-process device answer at once.
pub fn listener(launcher: Launcher) -> Listener {
    let mut listener = Listener::new(launcher).unwrap();
    listener.timeout = Duration::from_secs(2);
    listener.connect_timeout = Duration::from_secs(5);
    listener.work_window = Duration::from_secs(4);
    listener
}

/// Runs the device checks `only` (all when empty) against a device configured by `configure`.
pub async fn run_device(
    only: &[&str],
    configure: impl Fn(&mut DeviceDriverConfig) + Send + Sync + 'static,
) -> Vec<CheckResult> {
    let selection = Selection {
        only: only.iter().map(|s| s.to_string()).collect(),
    };
    let report = runner::run(
        listener(device_launcher(configure)),
        Role::Device,
        &selection,
        |_: Progress<'_>| {},
    )
    .await
    .expect("the suite listens");
    report.results
}
