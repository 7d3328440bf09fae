//! End to end against the reference implementation's Job Declarator Client (jd_client_sv2 0.6.0) in
//! solo-mining mode: our mock Template Provider feeds it over Noise, our SV2 mining device mines on it
//! over Noise (checking its certificate against SRI's test authority), its shares are accepted, and the
//! blocks it builds reach our TP as SubmitSolution and validate as full blocks.

mod common;

use sv2_codec::noise::keys::{AuthorityPublicKey, Keypair};
use sv2_interop::noise::TEST_AUTHORITY_PUBLIC;
use sv2_interop::peers::{binary_or_skip, start_reference_jdc};
use sv2_mock::miner::driver::DeviceDriverConfig;
use sv2_mock::miner::ChannelKind;
use sv2_mock::tp::driver::{serve, TpServerConfig};
use tokio::net::TcpListener;

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
    let (accepted, blocks, valid) =
        common::device_mines_and_blocks_validate("jd_client_sv2", config, &jdc, &tp).await;
    assert!(
        jdc.exited().is_none(),
        "jd_client_sv2 exited:\n{}",
        jdc.log_tail(30)
    );
    println!(
        "e2e jdc ({kind:?} channel): {accepted} share(s) accepted by jd_client_sv2, {blocks} block(s) reached our TP, {valid} valid"
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
