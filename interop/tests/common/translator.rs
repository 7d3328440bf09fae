//! translator_sv2 as the client under test of the translator suite: started for each check, its
//! upstream the suite (or a relay in front of the suite that applies a client fault scenario) and
//! its SV1 side on the port the suite chose.

use std::path::Path;
use std::sync::Arc;

use sv2_codec::noise::keys::{Keypair, SecretKey};
use sv2_conformance::serve::launch::{BoxFuture, Launched, Launcher};
use sv2_conformance::serve::Endpoint;
use sv2_interop::peers::{free_ports, scratch_dir, PeerProcess, TranslatorConfig};
use sv2_scenario::relay::{serve, RelayConfig, RelayHandle};
use sv2_scenario::Scenario;

/// A translator started for one check (and the relay in front of the suite, if any).
struct Translator {
    process: PeerProcess,
    relay: Option<RelayHandle>,
}

impl Launched for Translator {
    fn exited(&mut self) -> Option<(bool, String)> {
        let status = self.process.exited()?;
        use std::os::unix::process::ExitStatusExt;
        let crashed = status.signal().is_some() || status.code() == Some(101);
        Some((
            crashed,
            format!("{status}; its last output:\n{}", self.process.log_tail(40)),
        ))
    }

    fn stop(self: Box<Self>) -> BoxFuture<String> {
        Box::pin(async move {
            if let Some(relay) = &self.relay {
                relay.shutdown();
            }
            let tail = self.process.log_tail(40);
            drop(self.process);
            format!("translator_sv2 stopped; its last output:\n{tail}")
        })
    }
}

/// Starts translator_sv2 for each check. With `fault` (a file of scenarios/faults/clients/), its
/// upstream is a relay that applies it on the way to the suite.
pub fn launcher(binary: &Path, fault: Option<&str>) -> Launcher {
    let binary = binary.to_path_buf();
    let scenario = fault.map(|file| {
        let path = format!(
            "{}/../scenarios/faults/clients/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        Arc::new(
            Scenario::from_toml(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{path}: {e}")),
        )
    });
    Launcher::InProcess(Arc::new(move |endpoint: &Endpoint| {
        let [monitoring_port] = free_ports().unwrap();
        let (upstream_port, authority, relay) = match &scenario {
            None => (endpoint.port, endpoint.authority_key.clone(), None),
            Some(scenario) => {
                let suite: sv2_codec::noise::keys::Sv2Url = endpoint.url.parse().unwrap();
                let mut config = RelayConfig::new(suite.host_port().parse().unwrap());
                config.upstream_noise = Some(suite.authority_key);
                let authority = Keypair::generate().unwrap();
                let now = sv2_wire::unix_now();
                config.downstream_noise = Some(sv2_codec::noise::ResponderConfig::issue(
                    &SecretKey::generate().unwrap(),
                    &authority,
                    now - 60,
                    now + 3600,
                ));
                config.scenario = scenario.clone();
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                listener.set_nonblocking(true).unwrap();
                let relay =
                    serve(tokio::net::TcpListener::from_std(listener).unwrap(), config).unwrap();
                (relay.addr.port(), authority.public.to_base58(), Some(relay))
            }
        };
        let config = TranslatorConfig {
            downstream_port: endpoint
                .downstream_port
                .expect("a translator run's SV1 port"),
            upstream_port,
            upstream_authority: &authority,
            monitoring_port,
            min_individual_miner_hashrate: 100_000.0,
            shares_per_minute: 60.0,
        };
        let process = PeerProcess::start(
            &binary,
            &scratch_dir("tproxy-suite").unwrap(),
            &config.to_toml(),
        )
        .unwrap();
        Box::new(Translator { process, relay }) as Box<dyn Launched>
    }))
}
