//! The mining and share checks against the mock pool: each passes (or skips for a stated reason) on
//! the faithful pool, and each faulty mode makes the checks that name its fault fail.

mod common;

use common::{line, mock_pool, run_only};
use sv2_conformance::{Target, Verdict};
use sv2_mock::pool::driver::PoolHandle;

use sv2_mock::pool::{PoolFaults, ShareRules, TemplateSource};
use sv2_mock::tp::TpConfig;

/// How the pool under test is set up besides its faults.
#[derive(Clone, Copy, Default)]
struct Shape {
    /// Blocks are hard (nBits 0x1e00ffff): shares are not blocks, so the work does not move on each
    /// share and share-target rules can be told apart from block acceptance.
    hard_blocks: bool,
    /// REQUIRES_FIXED_VERSION (jobs forbid version rolling).
    fixed_version: bool,
    /// REQUIRES_WORK_SELECTION taken (custom jobs judged on their merits).
    work_selection: bool,
}

/// What is wrong with the pool under test: deliberate violations, or share rules it does not apply
/// (a lenient pool, as `sv2-probe mock pool` can be configured, accepts what it should refuse).
#[derive(Clone, Default)]
struct Broken {
    faults: PoolFaults,
    shares: ShareRules,
    /// A fault scenario (scenarios/faults/) applied to what the pool sends.
    scenario: Option<&'static str>,
}

/// A correct pool behind the fault scenario `file`.
fn scenario(file: &'static str) -> Broken {
    Broken {
        scenario: Some(file),
        ..Broken::default()
    }
}

/// What keeps a pool under test running.
#[allow(dead_code)]
enum Running {
    Pool(PoolHandle),
    Behind(PoolHandle, sv2_scenario::relay::RelayHandle),
}

impl From<PoolFaults> for Broken {
    fn from(faults: PoolFaults) -> Broken {
        Broken {
            faults,
            ..Broken::default()
        }
    }
}

async fn pool(broken: impl Into<Broken>, shape: Shape) -> (Running, Target) {
    let broken = broken.into();
    let configure = |config: &mut sv2_mock::pool::driver::PoolServerConfig| {
        config.pool.faults = broken.faults;
        config.pool.shares = broken.shares;
        config.pool.fixed_version = shape.fixed_version;
        config.pool.work_selection = shape.work_selection;
        if shape.hard_blocks {
            config.pool.template_source = TemplateSource::InProcess(TpConfig {
                nbits: 0x1e00_ffff,
                ..TpConfig::default()
            });
        }
    };
    match broken.scenario {
        Some(file) => {
            let ((pool, relay), target) = common::mock_pool_behind(file, configure).await;
            (Running::Behind(pool, relay), target)
        }
        None => {
            let (pool, target) = mock_pool(configure).await;
            (Running::Pool(pool), target)
        }
    }
}

/// Check `id` fails on a pool with `broken` and passes on the faithful pool of the same shape.
/// Each check proven able to fail is the literal first argument of a call to this (or
/// [`fails_shaped`], [`rule_fails`]): every_check_can_fail.rs reads them.
async fn fails(id: &str, broken: impl Into<Broken>, shape: Shape) {
    fails_shaped(id, broken, shape, shape).await
}

/// Check `id` fails on a pool with `broken` shaped `shape`, and passes on the faithful pool shaped
/// `faithful` (where the check applies: a fixed-version pool has nothing for a check of version
/// rolling, a pool without work selection nothing for one of custom jobs).
async fn fails_shaped(id: &str, broken: impl Into<Broken>, shape: Shape, faithful: Shape) {
    let (_pool, target) = pool(broken, shape).await;
    let results = run_only(target, &[id]).await;
    assert_eq!(results.len(), 1, "{id} is in the catalogue");
    let r = &results[0];
    println!("faulty:   {}", line(r));
    assert_eq!(r.outcome.verdict, Verdict::Fail, "{}", line(r));
    let (_pool, target) = pool(PoolFaults::default(), faithful).await;
    let r = &run_only(target, &[id]).await[0];
    println!("faithful: {}", line(r));
    assert_eq!(r.outcome.verdict, Verdict::Pass, "{}", line(r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faithful_pool_passes_or_skips_with_reason() {
    for shape in [
        Shape::default(),
        Shape {
            hard_blocks: true,
            ..Shape::default()
        },
    ] {
        let (_pool, target) = pool(PoolFaults::default(), shape).await;
        let results = run_only(target, &["mining", "shares"]).await;
        for r in &results {
            println!("hard_blocks={}: {}", shape.hard_blocks, line(r));
        }
        let bad: Vec<String> = results
            .iter()
            .filter(|r| matches!(r.outcome.verdict, Verdict::Fail | Verdict::Error))
            .map(line)
            .collect();
        assert!(bad.is_empty(), "{bad:#?}");
        // Skips only where the mock pool truly gives nothing to judge.
        let mut allowed_skips = vec![
            // The mock refuses REQUIRES_WORK_SELECTION (it has no Job Declarator).
            "mining.custom-job-standard",
            // Its jobs allow version rolling.
            "shares.version-fixed",
        ];
        if shape.hard_blocks {
            // No block is found, so no new work comes within the window.
            allowed_skips.push("mining.close-channel");
        } else {
            // Every share is a block at regtest difficulty, and the mock takes blocks.
            allowed_skips.push("shares.old-target");
        }
        for r in &results {
            if r.outcome.verdict == Verdict::Skip {
                assert!(allowed_skips.contains(&r.check.id), "{}", line(r));
            }
        }
    }
}

fn faults(set: impl FnOnce(&mut PoolFaults)) -> PoolFaults {
    let mut f = PoolFaults::default();
    set(&mut f);
    f
}

/// A pool that does not apply some share rules.
fn lenient(set: impl FnOnce(&mut ShareRules)) -> Broken {
    let mut shares = ShareRules::default();
    set(&mut shares);
    Broken {
        shares,
        ..Broken::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_standard_channels_fail_both_channel_kinds() {
    fails(
        "mining.both-channel-kinds",
        faults(|f| f.refuse_standard_channels = true),
        Shape::default(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_above_max_fails_max_target() {
    fails(
        "mining.max-target",
        faults(|f| f.target_above_max = true),
        Shape::default(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reused_channel_ids_fail_unique_ids() {
    fails(
        "mining.unique-ids",
        scenario("reuse-channel-ids.toml"),
        Shape::default(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_request_id_fails_request_id_echo() {
    fails(
        "mining.request-id-echo",
        scenario("wrong-request-id.toml"),
        Shape::default(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_min_extranonce_size_fails_extranonce_size() {
    fails(
        "mining.extranonce-size",
        faults(|f| f.ignore_min_extranonce_size = true),
        Shape::default(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipped_future_job_fails_standard_first_job() {
    fails(
        "mining.standard-first-job",
        faults(|f| f.skip_future_job = true),
        Shape::default(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_jobs_to_standard_fail_standard_jobs_flag() {
    fails(
        "mining.standard-jobs-flag",
        faults(|f| f.extended_jobs_to_standard = true),
        Shape::default(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_version_rolling_flag_fails_version_rolling_flag() {
    // A fixed-version pool that takes the flag anyway fails; a rolling pool passes (a faithful
    // fixed-version pool refuses the flag: nothing to judge).
    let fixed = Shape {
        fixed_version: true,
        ..Shape::default()
    };
    fails_shaped(
        "mining.version-rolling-flag",
        faults(|f| f.ignore_version_rolling_flag = true),
        fixed,
        Shape::default(),
    )
    .await;
    let (_pool, target) = pool(PoolFaults::default(), fixed).await;
    let r = &run_only(target, &["mining.version-rolling-flag"]).await[0];
    assert_eq!(r.outcome.verdict, Verdict::Skip, "{}", line(r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_update_channel_fails_update_channel_checks() {
    fails(
        "mining.update-channel-target",
        faults(|f| f.ignore_update_channel = true),
        Shape::default(),
    )
    .await;
    fails(
        "mining.update-channel-unknown",
        faults(|f| f.ignore_update_channel = true),
        Shape::default(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_close_channel_fails_close_channel() {
    fails(
        "mining.close-channel",
        faults(|f| f.ignore_close_channel = true),
        Shape::default(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_close_keeping_members_fails_close_group() {
    fails(
        "mining.close-group",
        faults(|f| f.close_group_keeps_members = true),
        Shape::default(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_custom_jobs_fail_custom_job_checks() {
    let accepting = || faults(|f| f.accept_custom_jobs = true);
    fails(
        "mining.custom-job-unrequested",
        accepting(),
        Shape::default(),
    )
    .await;
    // The faithful pool passes the standard-channel check where it takes work selection.
    fails_shaped(
        "mining.custom-job-standard",
        accepting(),
        Shape::default(),
        Shape {
            work_selection: true,
            ..Shape::default()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_shares_fail_valid_accepted_and_unknown_channel() {
    fails(
        "shares.valid-accepted",
        scenario("never-answer-shares.toml"),
        Shape::default(),
    )
    .await;
    fails(
        "shares.unknown-channel",
        scenario("never-answer-shares.toml"),
        Shape::default(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cumulative_counts_fail_accepted_count() {
    fails(
        "shares.accepted-count",
        faults(|f| f.cumulative_accepted_count = true),
        Shape::default(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchecked_ntime_fails_ntime_checks() {
    fails(
        "shares.ntime-too-early",
        lenient(|r| {
            r.ntime_past_slack_secs = u32::MAX;
            r.ntime_future_slack_secs = u32::MAX;
        }),
        Shape::default(),
    )
    .await;
    fails(
        "shares.ntime-too-late",
        lenient(|r| {
            r.ntime_past_slack_secs = u32::MAX;
            r.ntime_future_slack_secs = u32::MAX;
        }),
        Shape::default(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchecked_extranonce_size_fails_extranonce_short() {
    fails(
        "shares.extranonce-short",
        lenient(|r| r.check_extranonce_size = false),
        Shape::default(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unechoed_errors_fail_unknown_job() {
    fails(
        "shares.unknown-job",
        scenario("no-error-echo.toml"),
        Shape::default(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_above_target_fails_above_target() {
    fails(
        "shares.above-target",
        lenient(|r| r.check_target = false),
        Shape::default(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unenforced_set_target_fails_old_target() {
    fails(
        "shares.old-target",
        faults(|f| f.set_target_not_enforced = true),
        Shape {
            hard_blocks: true,
            ..Shape::default()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_duplicates_fail_duplicate() {
    fails(
        "shares.duplicate",
        lenient(|r| r.check_duplicates = false),
        Shape {
            hard_blocks: true,
            ..Shape::default()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchecked_version_fails_version_mask() {
    fails(
        "shares.version-mask",
        lenient(|r| r.check_version = false),
        Shape::default(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchecked_version_fails_version_fixed_on_a_fixed_version_pool() {
    fails(
        "shares.version-fixed",
        lenient(|r| r.check_version = false),
        Shape {
            fixed_version: true,
            ..Shape::default()
        },
    )
    .await;
}

/// The monitor rules that judge channels, jobs and flags, shown failing on the mock pool's faults: each
/// runs with the active check that makes the traffic, over that check's connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_rules_fail_on_the_mock_pools_faults() {
    rule_fails(
        "monitor.target-within-max",
        "mining.max-target",
        faults(|f| f.target_above_max = true).into(),
        Shape::default(),
    )
    .await;
    rule_fails(
        "monitor.first-job-future",
        "mining.standard-first-job",
        faults(|f| f.skip_future_job = true).into(),
        Shape::default(),
    )
    .await;
    rule_fails(
        "monitor.standard-jobs-flag",
        "mining.standard-jobs-flag",
        faults(|f| f.extended_jobs_to_standard = true).into(),
        Shape::default(),
    )
    .await;
    rule_fails(
        "monitor.version-rolling-flag",
        "mining.version-rolling-flag",
        faults(|f| f.ignore_version_rolling_flag = true).into(),
        Shape {
            fixed_version: true,
            ..Shape::default()
        },
    )
    .await;
    rule_fails(
        "monitor.silent-after-close",
        "mining.close-channel",
        faults(|f| f.ignore_close_channel = true).into(),
        Shape::default(),
    )
    .await;
    rule_fails(
        "monitor.job-id-unique",
        "shares.accepted-count",
        faults(|f| f.reuse_job_ids = true).into(),
        Shape::default(),
    )
    .await;
    // Faults as data: a correct pool behind a scenario that rewrites its output.
    rule_fails(
        "monitor.unique-channel-ids",
        "mining.unique-ids",
        scenario("reuse-channel-ids.toml"),
        Shape::default(),
    )
    .await;
    rule_fails(
        "monitor.prev-hash-names-future-job",
        "mining.standard-first-job",
        scenario("unknown-prev-hash-job.toml"),
        Shape::default(),
    )
    .await;
}

/// `rule` fails on the broken pool (running `check` to give it traffic), and passes or skips on the
/// faithful one of the same shape.
async fn rule_fails(rule: &str, check: &str, broken: Broken, shape: Shape) {
    let (_pool, target) = pool(broken, shape).await;
    let results = run_only(target, &[check, rule]).await;
    let r = results
        .iter()
        .find(|r| r.check.id == rule)
        .expect("the rule ran");
    println!("faulty:   {}", line(r));
    assert_eq!(r.outcome.verdict, Verdict::Fail, "{}", line(r));
    let (_pool, target) = pool(PoolFaults::default(), shape).await;
    let results = run_only(target, &[check, rule]).await;
    let r = results
        .iter()
        .find(|r| r.check.id == rule)
        .expect("the rule ran");
    println!("faithful: {}", line(r));
    // The faithful pool may give the rule nothing to judge (it refuses max_target = 1).
    assert!(
        matches!(r.outcome.verdict, Verdict::Pass | Verdict::Skip),
        "{}",
        line(r)
    );
}

/// A pool that acknowledges only full batches of 10 shares, never on a timer (as SRI's pool_sv2 and
/// jd_client_sv2 with share_batch_size = 10): §5.3.13 allows it, so the checks that need an accepted
/// share (or its answer, as the duplicate and TLV checks) fill the batch with more valid shares
/// instead of calling the first unanswered share a failure. (A pool that acknowledges nothing still
/// fails them: silent_shares_fail_valid_accepted_and_unknown_channel.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_acknowledging_in_batches_of_10_passes_the_acceptance_checks() {
    let batched = [
        "shares.valid-accepted",
        "shares.accepted-count",
        "shares.duplicate",
        "ext.unnegotiated-tlv-ignored",
    ];
    let (_pool, target) = mock_pool(|config| {
        config.pool.ack_every = 10;
        config.pool.ack_delay_secs = u32::MAX;
        config.pool.template_source = TemplateSource::InProcess(TpConfig {
            nbits: 0x1e00_ffff,
            ..TpConfig::default()
        });
    })
    .await;
    for r in &run_only(target, &batched).await {
        println!("batching: {}", line(r));
        assert_eq!(r.outcome.verdict, Verdict::Pass, "{}", line(r));
    }
}
