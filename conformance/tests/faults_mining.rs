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

/// Runs `checks` on a pool with `faults` and asserts each fails; and on the same-shaped faithful
/// pool, that each passes.
async fn fails_with(faults: impl Into<Broken>, shape: Shape, checks: &[&str]) {
    let (_pool, target) = pool(faults, shape).await;
    let results = run_only(target, checks).await;
    assert_eq!(
        results.len(),
        checks.len(),
        "{checks:?} are all in the catalogue"
    );
    for r in &results {
        println!("faulty:   {}", line(r));
        assert_eq!(r.outcome.verdict, Verdict::Fail, "{}", line(r));
    }
    let (_pool, target) = pool(PoolFaults::default(), shape).await;
    for r in &run_only(target, checks).await {
        println!("faithful: {}", line(r));
        assert_eq!(r.outcome.verdict, Verdict::Pass, "{}", line(r));
    }
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
    fails_with(
        faults(|f| f.refuse_standard_channels = true),
        Shape::default(),
        &["mining.both-channel-kinds"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_above_max_fails_max_target() {
    fails_with(
        faults(|f| f.target_above_max = true),
        Shape::default(),
        &["mining.max-target"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reused_channel_ids_fail_unique_ids() {
    fails_with(
        scenario("reuse-channel-ids.toml"),
        Shape::default(),
        &["mining.unique-ids"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_request_id_fails_request_id_echo() {
    fails_with(
        scenario("wrong-request-id.toml"),
        Shape::default(),
        &["mining.request-id-echo"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_min_extranonce_size_fails_extranonce_size() {
    fails_with(
        faults(|f| f.ignore_min_extranonce_size = true),
        Shape::default(),
        &["mining.extranonce-size"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipped_future_job_fails_standard_first_job() {
    fails_with(
        faults(|f| f.skip_future_job = true),
        Shape::default(),
        &["mining.standard-first-job"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_jobs_to_standard_fail_standard_jobs_flag() {
    fails_with(
        faults(|f| f.extended_jobs_to_standard = true),
        Shape::default(),
        &["mining.standard-jobs-flag"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_version_rolling_flag_fails_version_rolling_flag() {
    let shape = Shape {
        fixed_version: true,
        ..Shape::default()
    };
    let (_pool, target) = pool(faults(|f| f.ignore_version_rolling_flag = true), shape).await;
    let r = &run_only(target, &["mining.version-rolling-flag"]).await[0];
    println!("faulty:   {}", line(r));
    assert_eq!(r.outcome.verdict, Verdict::Fail, "{}", line(r));
    // A faithful fixed-version pool refuses the flag: nothing to judge.
    let (_pool, target) = pool(PoolFaults::default(), shape).await;
    let r = &run_only(target, &["mining.version-rolling-flag"]).await[0];
    println!("faithful: {}", line(r));
    assert_eq!(r.outcome.verdict, Verdict::Skip, "{}", line(r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_update_channel_fails_update_channel_checks() {
    fails_with(
        faults(|f| f.ignore_update_channel = true),
        Shape::default(),
        &[
            "mining.update-channel-target",
            "mining.update-channel-unknown",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_close_channel_fails_close_channel() {
    fails_with(
        faults(|f| f.ignore_close_channel = true),
        Shape::default(),
        &["mining.close-channel"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_close_keeping_members_fails_close_group() {
    fails_with(
        faults(|f| f.close_group_keeps_members = true),
        Shape::default(),
        &["mining.close-group"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_custom_jobs_fail_custom_job_checks() {
    let (_pool, target) = pool(faults(|f| f.accept_custom_jobs = true), Shape::default()).await;
    let results = run_only(
        target,
        &[
            "mining.custom-job-unrequested",
            "mining.custom-job-standard",
        ],
    )
    .await;
    for r in &results {
        println!("faulty:   {}", line(r));
        assert_eq!(r.outcome.verdict, Verdict::Fail, "{}", line(r));
    }
    // The faithful mock refuses REQUIRES_WORK_SELECTION, so only the first can pass there.
    let (_pool, target) = pool(PoolFaults::default(), Shape::default()).await;
    let r = &run_only(target, &["mining.custom-job-unrequested"]).await[0];
    println!("faithful: {}", line(r));
    assert_eq!(r.outcome.verdict, Verdict::Pass, "{}", line(r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_shares_fail_valid_accepted_and_unknown_channel() {
    fails_with(
        scenario("never-answer-shares.toml"),
        Shape::default(),
        &["shares.valid-accepted", "shares.unknown-channel"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cumulative_counts_fail_accepted_count() {
    fails_with(
        faults(|f| f.cumulative_accepted_count = true),
        Shape::default(),
        &["shares.accepted-count"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchecked_ntime_fails_ntime_checks() {
    fails_with(
        lenient(|r| {
            r.ntime_past_slack_secs = u32::MAX;
            r.ntime_future_slack_secs = u32::MAX;
        }),
        Shape::default(),
        &["shares.ntime-too-early", "shares.ntime-too-late"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchecked_extranonce_size_fails_extranonce_short() {
    fails_with(
        lenient(|r| r.check_extranonce_size = false),
        Shape::default(),
        &["shares.extranonce-short"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unechoed_errors_fail_unknown_job() {
    fails_with(
        scenario("no-error-echo.toml"),
        Shape::default(),
        &["shares.unknown-job"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_above_target_fails_above_target() {
    fails_with(
        lenient(|r| r.check_target = false),
        Shape::default(),
        &["shares.above-target"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unenforced_set_target_fails_old_target() {
    fails_with(
        faults(|f| f.set_target_not_enforced = true),
        Shape {
            hard_blocks: true,
            ..Shape::default()
        },
        &["shares.old-target"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_duplicates_fail_duplicate() {
    fails_with(
        lenient(|r| r.check_duplicates = false),
        Shape {
            hard_blocks: true,
            ..Shape::default()
        },
        &["shares.duplicate"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchecked_version_fails_version_mask() {
    fails_with(
        lenient(|r| r.check_version = false),
        Shape::default(),
        &["shares.version-mask"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchecked_version_fails_version_fixed_on_a_fixed_version_pool() {
    fails_with(
        lenient(|r| r.check_version = false),
        Shape {
            fixed_version: true,
            ..Shape::default()
        },
        &["shares.version-fixed"],
    )
    .await;
}

/// The monitor rules that judge channels, jobs and flags, shown failing on the mock pool's faults: each
/// runs with the active check that makes the traffic, over that check's connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_rules_fail_on_the_mock_pools_faults() {
    let cases: Vec<(PoolFaults, Shape, &str, &str)> = vec![
        (
            PoolFaults {
                target_above_max: true,
                ..PoolFaults::default()
            },
            Shape::default(),
            "mining.max-target",
            "monitor.target-within-max",
        ),
        (
            PoolFaults {
                skip_future_job: true,
                ..PoolFaults::default()
            },
            Shape::default(),
            "mining.standard-first-job",
            "monitor.first-job-future",
        ),
        (
            PoolFaults {
                extended_jobs_to_standard: true,
                ..PoolFaults::default()
            },
            Shape::default(),
            "mining.standard-jobs-flag",
            "monitor.standard-jobs-flag",
        ),
        (
            PoolFaults {
                ignore_version_rolling_flag: true,
                ..PoolFaults::default()
            },
            Shape {
                fixed_version: true,
                ..Shape::default()
            },
            "mining.version-rolling-flag",
            "monitor.version-rolling-flag",
        ),
        (
            PoolFaults {
                ignore_close_channel: true,
                ..PoolFaults::default()
            },
            Shape::default(),
            "mining.close-channel",
            "monitor.silent-after-close",
        ),
        (
            PoolFaults {
                reuse_job_ids: true,
                ..PoolFaults::default()
            },
            Shape::default(),
            "shares.accepted-count",
            "monitor.job-id-unique",
        ),
    ];
    for (faults, shape, check, rule) in cases {
        rule_fails(faults.into(), shape, check, rule).await;
    }
    // Faults as data: a correct pool behind a scenario that rewrites its output.
    rule_fails(
        scenario("reuse-channel-ids.toml"),
        Shape::default(),
        "mining.unique-ids",
        "monitor.unique-channel-ids",
    )
    .await;
    rule_fails(
        scenario("unknown-prev-hash-job.toml"),
        Shape::default(),
        "mining.standard-first-job",
        "monitor.prev-hash-names-future-job",
    )
    .await;
}

/// `rule` fails on the broken pool (running `check` to give it traffic), and passes or skips on the
/// faithful one of the same shape.
async fn rule_fails(broken: Broken, shape: Shape, check: &str, rule: &str) {
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
