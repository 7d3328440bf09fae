//! The mock pool's share rules: each defaults to the spec's, and relaxing one lets a share that breaks
//! it through. A share is mined on the pool's own work with the shared client view
//! (`sv2_mock::work::Tracker`), valid except for the one field each case breaks.

use sv2_codec::messages::common::{flags, protocol, SetupConnection};
use sv2_codec::messages::mining::OpenExtendedMiningChannel;
use sv2_codec::types::{Str0_255, U256};
use sv2_codec::Message;
use sv2_mock::pool::{Output, Pool, PoolConfig, ShareError, ShareRules, TemplateSource};
use sv2_mock::tp::TpConfig;
use sv2_mock::work::{ShareParams, Tracker, Work};

const NOW: u32 = 1_700_000_000;

/// A pool with hard blocks (a share is not a block, so the work stays put) and `rules`, one
/// extended channel open on a session, and the client's view of its work.
fn pool_with_work(rules: ShareRules) -> (Pool, sv2_mock::pool::SessionId, Tracker, Work) {
    let mut pool = Pool::new(
        PoolConfig {
            shares: rules,
            template_source: TemplateSource::InProcess(TpConfig {
                nbits: 0x1d00_ffff,
                ..TpConfig::default()
            }),
            ..PoolConfig::default()
        },
        NOW,
    )
    .unwrap();
    let session = pool.open_session(NOW);
    let mut tracker = Tracker::default();
    let setup: Message<'static> = SetupConnection {
        protocol: protocol::MINING,
        min_version: 2,
        max_version: 2,
        flags: flags::REQUIRES_VERSION_ROLLING,
        endpoint_host: Str0_255::default(),
        endpoint_port: 0,
        vendor: Str0_255::default(),
        hardware_version: Str0_255::default(),
        firmware: Str0_255::default(),
        device_id: Str0_255::default(),
    }
    .into();
    let open: Message<'static> = OpenExtendedMiningChannel {
        request_id: 1,
        user_identity: Str0_255::new(b"rules".to_vec()).unwrap(),
        nominal_hash_rate: 1.0,
        max_target: U256([0xff; 32]),
        min_extranonce_size: 4,
    }
    .into();
    for message in [setup, open] {
        for output in pool.handle(session, &message, NOW) {
            if let Output::Send { message, .. } = output {
                tracker.received(&message);
            }
        }
    }
    let channel = *tracker.channels.keys().next().expect("a channel opened");
    let work = tracker.work(channel).expect("work on the channel");
    (pool, session, tracker, work)
}

/// Submits a share mined with `params` at `now` (seconds after the work came); the pool's verdict.
fn submit(
    rules: ShareRules,
    change: impl FnOnce(&Work, &mut ShareParams),
    now: u32,
) -> Result<(), ShareError> {
    let (mut pool, session, _tracker, work) = pool_with_work(rules);
    let mut params = work.params();
    change(&work, &mut params);
    let share = work
        .find(&params, None, 1 << 24)
        .expect("a share at the easiest target");
    let outputs = pool.handle(session, &work.submit(1, &share), NOW + now);
    for output in outputs {
        match output {
            Output::ShareAccepted { .. } => return Ok(()),
            Output::ShareRejected { error, .. } => return Err(error),
            _ => {}
        }
    }
    panic!("the share got no verdict")
}

#[test]
fn ntime_slack_is_a_rule_the_spec_sets_to_zero() {
    // §5.3.11: up to min_ntime + seconds since the prev hash. 10 s after the work, +10 is fine.
    assert_eq!(
        submit(ShareRules::default(), |_, p| p.ntime += 10, 10),
        Ok(())
    );
    // The reference implementation's test device: now + 60 s. Refused by default, with the rule
    // and the allowed range in the error's text.
    let err = submit(ShareRules::default(), |_, p| p.ntime += 70, 10).unwrap_err();
    assert_eq!(err.code(), "invalid-ntime");
    let text = err.to_string();
    assert!(
        text.contains("§5.3.11") && text.contains("ntime_future_slack_secs"),
        "{text}"
    );
    assert!(text.contains("outside the allowed"), "{text}");
    let relaxed = ShareRules {
        ntime_future_slack_secs: 90,
        ..ShareRules::default()
    };
    assert_eq!(submit(relaxed, |_, p| p.ntime += 70, 10), Ok(()));
    // Below min_ntime: refused unless the past slack allows it.
    let err = submit(ShareRules::default(), |_, p| p.ntime -= 5, 10).unwrap_err();
    assert_eq!(err.code(), "invalid-ntime");
    let relaxed = ShareRules {
        ntime_past_slack_secs: 5,
        ..ShareRules::default()
    };
    assert_eq!(submit(relaxed, |_, p| p.ntime -= 5, 10), Ok(()));
}

#[test]
fn each_check_can_be_relaxed() {
    // An extranonce one byte short.
    let short = |_: &Work, p: &mut ShareParams| {
        p.extranonce.pop();
    };
    assert_eq!(
        submit(ShareRules::default(), short, 0).unwrap_err().code(),
        "bad-extranonce-size"
    );
    let relaxed = ShareRules {
        check_extranonce_size: false,
        ..ShareRules::default()
    };
    assert_eq!(submit(relaxed, short, 0), Ok(()));
    // A version bit outside the BIP320 mask.
    let version = |_: &Work, p: &mut ShareParams| p.version ^= 1;
    assert_eq!(
        submit(ShareRules::default(), version, 0)
            .unwrap_err()
            .code(),
        "invalid-non-rollable-version-bit"
    );
    let relaxed = ShareRules {
        check_version: false,
        ..ShareRules::default()
    };
    assert_eq!(submit(relaxed, version, 0), Ok(()));
}

#[test]
fn a_share_above_the_target_and_a_duplicate_pass_only_when_relaxed() {
    for (rules, expect) in [
        (ShareRules::default(), Err("difficulty-too-low")),
        (
            ShareRules {
                check_target: false,
                ..ShareRules::default()
            },
            Ok(()),
        ),
    ] {
        let (mut pool, session, _tracker, work) = pool_with_work(rules);
        let miss = work.miss(&work.params()).expect("a hash above the target");
        let verdict = pool
            .handle(session, &work.submit(1, &miss), NOW)
            .into_iter()
            .find_map(|o| match o {
                Output::ShareAccepted { .. } => Some(Ok(())),
                Output::ShareRejected { error, .. } => Some(Err(error.code())),
                _ => None,
            });
        assert_eq!(verdict, Some(expect));
    }
    for (rules, second) in [
        (ShareRules::default(), Err("duplicate-share")),
        (
            ShareRules {
                check_duplicates: false,
                ..ShareRules::default()
            },
            Ok(()),
        ),
    ] {
        let (mut pool, session, _tracker, work) = pool_with_work(rules);
        let share = work.find(&work.params(), None, 1 << 24).unwrap();
        let mut verdicts = Vec::new();
        for seq in [1, 2] {
            verdicts.extend(
                pool.handle(session, &work.submit(seq, &share), NOW)
                    .into_iter()
                    .filter_map(|o| match o {
                        Output::ShareAccepted { .. } => Some(Ok(())),
                        Output::ShareRejected { error, .. } => Some(Err(error.code())),
                        _ => None,
                    }),
            );
        }
        assert_eq!(verdicts, vec![Ok(()), second]);
    }
}
