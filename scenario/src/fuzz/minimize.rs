//! Minimising a finding: the fewest steps, then the fewest bytes, that still show it. Each
//! candidate is replayed by the caller (on a fresh connection to the server, or of a fresh client);
//! a candidate is kept when the replay shows the same class of finding.

use std::future::Future;

use sv2_codec::frame::HEADER_LEN;

use crate::script::{HexPart, Script, Step};

/// Replays a candidate: whether it still shows the finding.
pub trait Replay {
    fn shows(&mut self, candidate: &Script) -> impl Future<Output = bool> + Send;
}

/// Removes the steps the finding does not need (the mutation's sends, pauses and crowds; the
/// oracle steps stay), one at a time, then cuts the payload of each frame and raw write that is
/// left from its end, halving the cut when a replay no longer shows the finding. `shows` replays a
/// candidate; at most `budget` replays for each of the two passes.
pub async fn minimize(script: &Script, budget: usize, replay: &mut (impl Replay + Send)) -> Script {
    let mut best = script.clone();
    let mut tries = 0;
    let mut i = 0;
    while i + 1 < best.steps.len() && tries < budget {
        let removable = matches!(
            best.steps[i],
            Step::SendHex { .. } | Step::SendRaw(_) | Step::Sleep(_) | Step::Crowd(_)
        );
        if !removable {
            i += 1;
            continue;
        }
        let mut candidate = best.clone();
        candidate.steps.remove(i);
        tries += 1;
        if replay.shows(&candidate).await {
            best = candidate;
        } else {
            i += 1;
        }
    }
    let mut tries = 0;
    for i in 0..best.steps.len() {
        let mut cut = cuttable(&best.steps[i]).div_ceil(2);
        while cut > 0 && tries < budget {
            let Some(shorter) = cut_tail(&best.steps[i], cut) else {
                break;
            };
            let mut candidate = best.clone();
            candidate.steps[i] = shorter;
            tries += 1;
            if replay.shows(&candidate).await {
                best = candidate;
                cut = cut.min(cuttable(&best.steps[i]));
            } else {
                cut /= 2;
            }
        }
    }
    best
}

/// How many bytes could be cut from the end of a step: a frame's payload after its last saved
/// value, or raw bytes but the first.
fn cuttable(step: &Step) -> usize {
    match step {
        Step::SendHex { hex, .. } => match hex.last() {
            Some(HexPart::Bytes(b)) if hex.len() == 1 => b.len().saturating_sub(HEADER_LEN),
            Some(HexPart::Bytes(b)) => b.len(),
            _ => 0,
        },
        Step::SendRaw(bytes) => bytes.len().saturating_sub(1),
        _ => 0,
    }
}

/// The step with `cut` bytes fewer at its end. A frame's msg_length goes down by as much, so a
/// length that lied still lies by as much.
pub fn cut_tail(step: &Step, cut: usize) -> Option<Step> {
    if cut == 0 || cut > cuttable(step) {
        return None;
    }
    match step {
        Step::SendHex { hex, shape } => {
            let mut hex = hex.clone();
            let Some(HexPart::Bytes(last)) = hex.last_mut() else {
                return None;
            };
            last.truncate(last.len() - cut);
            let Some(HexPart::Bytes(first)) = hex.first_mut() else {
                return None;
            };
            if first.len() < HEADER_LEN {
                return None;
            }
            let length = u32::from_le_bytes([first[3], first[4], first[5], 0]);
            let length = length.saturating_sub(cut as u32);
            first[3..6].copy_from_slice(&length.to_le_bytes()[..3]);
            hex.retain(|p| !matches!(p, HexPart::Bytes(b) if b.is_empty()));
            // A flipped bit past the new end is gone with its byte.
            let mut shape = shape.clone();
            if shape
                .flip_wire_bit
                .is_some_and(|bit| bit / 8 >= crate::script::fill_len(&hex))
            {
                shape.flip_wire_bit = None;
            }
            Some(Step::SendHex { hex, shape })
        }
        Step::SendRaw(bytes) => Some(Step::SendRaw(bytes[..bytes.len() - cut].to_vec())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_step(payload: usize, claimed: u32) -> Step {
        let mut bytes = vec![0, 0, 0x10];
        bytes.extend_from_slice(&claimed.to_le_bytes()[..3]);
        bytes.extend(vec![0xaa; payload]);
        Step::SendHex {
            hex: vec![HexPart::Bytes(bytes)],
            shape: Default::default(),
        }
    }

    #[tokio::test]
    async fn the_fewest_bytes_that_still_show_it_and_the_length_lies_by_as_much() {
        // "Shows" while the payload is at least 5 bytes long.
        let script = Script {
            steps: vec![
                frame_step(40, 41),
                Step::ExpectAlive {
                    within: std::time::Duration::from_secs(1),
                },
            ],
            ..Script::default()
        };
        struct AtLeastFive(usize);
        impl Replay for AtLeastFive {
            async fn shows(&mut self, s: &Script) -> bool {
                self.0 += 1;
                matches!(&s.steps[0], Step::SendHex { hex, .. }
                    if matches!(&hex[0], HexPart::Bytes(b) if b.len() >= HEADER_LEN + 5))
            }
        }
        let mut replays = AtLeastFive(0);
        let best = minimize(&script, 32, &mut replays).await;
        let replays = replays.0;
        let Step::SendHex { hex, .. } = &best.steps[0] else {
            panic!("{best:?}");
        };
        let HexPart::Bytes(bytes) = &hex[0] else {
            panic!()
        };
        assert_eq!(bytes.len(), HEADER_LEN + 5);
        // It claimed one byte more than it had; it still does.
        assert_eq!(u32::from_le_bytes([bytes[3], bytes[4], bytes[5], 0]), 6);
        assert!(replays <= 32);
        assert_eq!(best.steps.len(), 2);
    }

    #[test]
    fn saved_values_are_never_cut() {
        let step = Step::SendHex {
            hex: vec![
                HexPart::Bytes(vec![0, 0, 0x1a, 8, 0, 0]),
                HexPart::Saved {
                    name: "channel".into(),
                    width: 4,
                },
                HexPart::Bytes(vec![1, 2, 3, 4]),
            ],
            shape: Default::default(),
        };
        assert_eq!(cuttable(&step), 4);
        let Some(Step::SendHex { hex, .. }) = cut_tail(&step, 4) else {
            panic!()
        };
        assert_eq!(hex.len(), 2);
        assert!(cut_tail(&step, 5).is_none());
    }
}
