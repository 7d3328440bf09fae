//! End to end against the reference implementation's Job Declarator Client (jd_client_sv2 0.6.0) in
//! solo-mining mode: our mock Template Provider feeds it over Noise, our SV2 mining device mines on it
//! over Noise (checking its certificate against SRI's test authority), its shares are accepted, and the
//! blocks it builds reach our TP as SubmitSolution and validate as full blocks.

use std::time::Duration;

use sv2_codec::noise::keys::{AuthorityPublicKey, Keypair};
use sv2_interop::noise::TEST_AUTHORITY_PUBLIC;
use sv2_interop::peers::{binary_or_skip, start_reference_jdc};
use sv2_mock::miner::driver::{spawn, DeviceDriverConfig};
use sv2_mock::miner::{ChannelKind, Event};
use sv2_mock::tp::driver::{serve, TpServerConfig};
use tokio::net::TcpListener;

const STEP: Duration = Duration::from_secs(20);

async fn mine_on_jdc(kind: ChannelKind) {
    let Some(jdc_bin) = binary_or_skip("jd_client_sv2", "e2e_jdc") else {
        return;
    };
    let tp = serve(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        TpServerConfig::new(Keypair::generate().unwrap()).unwrap(),
    )
    .unwrap();
    let started = start_reference_jdc(&jdc_bin, "jdc", tp.addr).await;
    let (mut jdc, jdc_addr) =
        started.unwrap_or_else(|e| panic!("{e}\nTP log:\n{}", tp.log().join("\n")));

    let authority = AuthorityPublicKey::from_base58(TEST_AUTHORITY_PUBLIC).unwrap();
    let mut config = DeviceDriverConfig::new(jdc_addr.to_string(), Some(authority));
    config.device.channel = kind;
    // A low nominal hash rate: an easy channel target, reached quickly even by a debug build.
    config.device.nominal_hash_rate = 10_000.0;
    let mut device = spawn(config);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while device.stats.borrow().accepted < 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut violations = Vec::new();
    while let Ok(event) = device.events.try_recv() {
        if matches!(event, Event::Violation { .. }) {
            violations.push(format!("{event:?}"));
        }
    }
    let report = device.stop().await;
    assert!(
        report.stats.accepted >= 1,
        "no share accepted: {:?}, outcome {:?}\n{}",
        report.stats,
        report.outcome,
        jdc.log_tail(40)
    );
    assert!(
        violations.is_empty(),
        "jd_client_sv2 broke rules: {violations:?}"
    );
    let verdicts = tp.wait_for_verdicts(1, STEP).await;
    assert!(
        // A second block on the same template can lose the race to the first one (regtest
        // difficulty): stale is the only fault allowed, and at least one block must be valid.
        verdicts.iter().any(|v| v.valid) && verdicts.iter().all(|v| v.valid || v.is_stale_only()),
        "{verdicts:?}\nTP log:\n{}\nJDC log:\n{}",
        tp.log().join("\n"),
        jdc.log_tail(40)
    );
    assert!(
        jdc.exited().is_none(),
        "jd_client_sv2 exited:\n{}",
        jdc.log_tail(30)
    );
    println!(
        "e2e jdc ({kind:?} channel): {} share(s) accepted by jd_client_sv2, {} block(s) reached our TP, {} valid",
        report.stats.accepted,
        verdicts.len(),
        verdicts.iter().filter(|v| v.valid).count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_device_mines_on_the_reference_jdc_extended_channel() {
    mine_on_jdc(ChannelKind::Extended).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_device_mines_on_the_reference_jdc_standard_channel() {
    mine_on_jdc(ChannelKind::Standard).await;
}
