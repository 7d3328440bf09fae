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

/// A device whose run ending is reported as a crash (a client that dies where it should not).
struct CrashingDevice {
    handle: DeviceHandle,
}

impl Launched for CrashingDevice {
    fn exited(&mut self) -> Option<(bool, String)> {
        self.handle
            .is_finished()
            .then(|| (true, "killed by signal 6 (simulated)".to_string()))
    }

    fn stop(self: Box<Self>) -> BoxFuture<String> {
        Box::pin(async move { format!("{:?}", self.handle.stop().await.outcome) })
    }
}

/// Our device, but its run ending counts as a crash.
pub fn crashing_device_launcher() -> Launcher {
    Launcher::InProcess(Arc::new(move |endpoint: &Endpoint| {
        let url: sv2_codec::noise::keys::Sv2Url = endpoint.url.parse().expect("the suite's URL");
        let config = DeviceDriverConfig::new(url.host_port(), url.authority_key);
        Box::new(CrashingDevice {
            handle: spawn(config),
        }) as Box<dyn Launched>
    }))
}

/// Our device behind a relay that applies a client fault scenario (scenarios/faults/clients/) to
/// what it sends and receives: the suite sees the relay's upstream leg as the client.
struct DeviceBehindRelay {
    device: DeviceHandle,
    relay: sv2_scenario::relay::RelayHandle,
}

impl Launched for DeviceBehindRelay {
    fn exited(&mut self) -> Option<(bool, String)> {
        self.device
            .is_finished()
            .then(|| (false, "the device's run ended".to_string()))
    }

    fn stop(self: Box<Self>) -> BoxFuture<String> {
        Box::pin(async move {
            self.relay.shutdown();
            format!("{:?}", self.device.stop().await.outcome)
        })
    }
}

/// A launcher for our device (configured by `configure`) behind the client fault `file`.
pub fn device_behind(
    file: &str,
    configure: impl Fn(&mut DeviceDriverConfig) + Send + Sync + 'static,
) -> Launcher {
    let path = format!(
        "{}/../scenarios/faults/clients/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let scenario = Arc::new(
        sv2_scenario::Scenario::from_toml(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{path}: {e}")),
    );
    let configure = Arc::new(configure);
    Launcher::InProcess(Arc::new(move |endpoint: &Endpoint| {
        let url: sv2_codec::noise::keys::Sv2Url = endpoint.url.parse().expect("the suite's URL");
        let upstream = url.host_port().parse().expect("a socket address");
        let mut relay = sv2_scenario::relay::RelayConfig::new(upstream);
        relay.upstream_noise = Some(url.authority_key);
        relay.scenario = scenario.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let relay = sv2_scenario::relay::serve(listener, relay).unwrap();
        let mut config = DeviceDriverConfig::new(relay.addr.to_string(), None);
        config.security = sv2_mock::miner::driver::Security::Plaintext;
        config.max_shares_per_second = 50;
        configure(&mut config);
        Box::new(DeviceBehindRelay {
            device: spawn(config),
            relay,
        }) as Box<dyn Launched>
    }))
}

/// A hand-written client's task ([`scripted_client`]): it never exits by itself.
struct ScriptedClient {
    task: tokio::task::JoinHandle<()>,
}

impl Launched for ScriptedClient {
    fn exited(&mut self) -> Option<(bool, String)> {
        None
    }

    fn stop(self: Box<Self>) -> BoxFuture<String> {
        self.task.abort();
        Box::pin(async { "stopped".to_string() })
    }
}

/// A client that never checks a MAC: whatever act 2 it gets, it goes on (bytes after a broken one),
/// and after its SetupConnection it reads on without decrypting, never closing.
pub fn mac_deaf_launcher() -> Launcher {
    scripted_client(|address, authority| async move {
        let _ = mac_deaf_session(&address, authority).await;
    })
}

/// A client that takes whatever its first read of act 2 brings for the whole of it (as a client of
/// the 170-byte layout the spec text still gives would) and goes on with 48 bytes of a "frame".
pub fn short_act2_launcher() -> Launcher {
    scripted_client(|address, authority| async move {
        let _ = short_act2_session(&address, authority).await;
    })
}

/// A launcher for a hand-written client: `session` (given the suite's address and authority key)
/// runs again and again, 100 ms apart, until the check stops it.
fn scripted_client<F, Fut>(session: F) -> Launcher
where
    F: Fn(String, sv2_codec::noise::keys::AuthorityPublicKey) -> Fut + Send + Sync + Copy + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    Launcher::InProcess(Arc::new(move |endpoint: &Endpoint| {
        let url: sv2_codec::noise::keys::Sv2Url = endpoint.url.parse().expect("the suite's URL");
        let address = url.host_port();
        let authority = url.authority_key.expect("an authority key");
        let task = tokio::spawn(async move {
            loop {
                session(address.clone(), authority).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Box::new(ScriptedClient { task }) as Box<dyn Launched>
    }))
}

async fn short_act2_session(
    address: &str,
    authority: sv2_codec::noise::keys::AuthorityPublicKey,
) -> std::io::Result<()> {
    use sv2_codec::noise::{Initiator, InitiatorConfig};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let mut initiator = Initiator::generate(InitiatorConfig::new(authority)).unwrap();
    stream.write_all(&initiator.write_act1().unwrap()).await?;
    let mut act2 = [0u8; 234];
    if stream.read(&mut act2).await? == 0 {
        return Ok(());
    }
    stream.write_all(&[0x42; 48]).await?;
    let mut buf = [0u8; 4096];
    while stream.read(&mut buf).await? > 0 {}
    Ok(())
}

async fn mac_deaf_session(
    address: &str,
    authority: sv2_codec::noise::keys::AuthorityPublicKey,
) -> std::io::Result<()> {
    use sv2_codec::noise::{Initiator, InitiatorConfig};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let mut initiator = Initiator::generate(InitiatorConfig::new(authority)).unwrap();
    stream.write_all(&initiator.write_act1().unwrap()).await?;
    let mut act2 = [0u8; 234];
    stream.read_exact(&mut act2).await?;
    match initiator.read_act2(&act2, sv2_wire::unix_now()) {
        Err(_) => stream.write_all(&[0x42; 48]).await?,
        Ok(established) => {
            let (mut encryptor, _) = established.transport.split();
            let setup = sv2_codec::messages::common::SetupConnection {
                protocol: 0,
                min_version: 2,
                max_version: 2,
                flags: 0,
                endpoint_host: sv2_codec::types::Str0_255::from_str("127.0.0.1").unwrap(),
                endpoint_port: 0,
                vendor: sv2_codec::types::Str0_255::from_str("mac-deaf").unwrap(),
                hardware_version: sv2_codec::types::Str0_255::from_str("").unwrap(),
                firmware: sv2_codec::types::Str0_255::from_str("").unwrap(),
                device_id: sv2_codec::types::Str0_255::from_str("").unwrap(),
            };
            let frame = sv2_codec::to_frame_bytes(&setup.into(), &[]).unwrap();
            let mut out = Vec::new();
            encryptor.encrypt_frame(&frame, &mut out).unwrap();
            stream.write_all(&out).await?;
        }
    }
    // Read on, decrypting nothing, until the suite closes.
    let mut buf = [0u8; 4096];
    while stream.read(&mut buf).await? > 0 {}
    Ok(())
}

/// Runs the checks `only` against the client `launcher` starts.
pub async fn run_with(only: &[&str], launcher: Launcher) -> Vec<CheckResult> {
    let selection = Selection {
        only: only.iter().map(|s| s.to_string()).collect(),
    };
    runner::run(
        listener(launcher),
        Role::Device,
        &selection,
        |_: Progress<'_>| {},
    )
    .await
    .expect("the suite listens")
    .results
}
