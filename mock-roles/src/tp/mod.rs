//! Mock Template Provider: the sans-IO core of a Template Distribution server (spec §7).
//!
//! One [`TemplateProvider`] serves any number of sessions (connections after the Noise handshake). The
//! driver opens a session per connection, feeds it the decoded messages with [`TemplateProvider::handle`],
//! and carries out the returned [`Output`]s: frames to send, sessions to close, verdicts to record. Blocks
//! come on demand ([`TemplateProvider::new_block`]; a driver calls it on a timer) or when a valid solution
//! arrives, if so configured.
//!
//! Behaviour, by message:
//! - SetupConnection: protocol 2 and a version range containing 2, else SetupConnection.Error
//!   (`unsupported-protocol` / `protocol-version-mismatch`) and close. No flag is defined for Template
//!   Distribution: Success echoes none.
//! - CoinbaseOutputConstraints: recorded; the first one gets NewTemplate(future) then SetNewPrevHash.
//! - RequestTransactionData: .Success with the template's transactions and the witness reserved value as
//!   excess_data, or .Error `template-id-not-found` / `stale-template-id`.
//! - SubmitSolution: checked as a full block ([`solution::check`]); the verdict is an output and is kept.
//! - Anything else after setup is reported as unexpected and otherwise ignored.

pub mod driver;
pub mod solution;
pub mod template;

use std::collections::BTreeMap;

use sv2_codec::messages::common::{SetupConnectionError, SetupConnectionSuccess};
use sv2_codec::messages::template_distribution::{
    NewTemplate, RequestTransactionDataError, RequestTransactionDataSuccess, SetNewPrevHashTdp,
};
use sv2_codec::types::{Seq0_255, Seq0_64K, Str0_255, B0_16M, B0_255, B0_64K, U256};
use sv2_codec::Message;

pub use solution::SolutionVerdict;
use sv2_chain::sha256d;
use sv2_chain::target::{compact_to_target, REGTEST_NBITS};
pub use template::{Template, TemplateParams, Tip};

use sv2_codec::messages::protocol::TEMPLATE_DISTRIBUTION as PROTOCOL_TEMPLATE_DISTRIBUTION;

/// A session (one connection) of the TP.
pub type SessionId = u64;

/// Verdicts kept (each holds its whole block): a peer that floods SubmitSolution cannot grow the TP
/// without bound. The oldest go first; [`TemplateProvider::solutions_checked`] counts them all.
pub const MAX_VERDICTS_KEPT: usize = 256;

/// Configuration of the mock TP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpConfig {
    /// Templates' shape.
    pub params: TemplateParams,
    /// nBits of every block (default regtest 0x207fffff).
    pub nbits: u32,
    /// Height of the first block to build.
    pub start_height: u32,
    /// Seed of the synthetic chain (prev hashes and transactions).
    pub seed: u64,
    /// Move to the next block when a valid solution arrives.
    pub advance_on_block: bool,
    /// How many old templates to keep for RequestTransactionData and late solutions.
    pub keep_templates: usize,
}

impl Default for TpConfig {
    fn default() -> Self {
        Self {
            params: TemplateParams::default(),
            nbits: REGTEST_NBITS,
            start_height: 200,
            seed: 0x5632_7470,
            advance_on_block: true,
            keep_templates: 64,
        }
    }
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send a message on a session.
    Send {
        session: SessionId,
        message: Message<'static>,
    },
    /// Close a session (after sending what came before).
    Close { session: SessionId, reason: String },
    /// A SubmitSolution was checked.
    Solution {
        session: SessionId,
        verdict: SolutionVerdict,
    },
    /// A message that has no place here was received and ignored.
    Unexpected { session: SessionId, message: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SessionState {
    AwaitingSetup,
    Ready {
        constraints: Option<(u32, u16)>,
        has_template: bool,
    },
    Closed,
}

/// The mock Template Provider.
#[derive(Debug)]
pub struct TemplateProvider {
    config: TpConfig,
    tip: Tip,
    templates: BTreeMap<u64, Template>,
    current: u64,
    next_id: u64,
    sessions: BTreeMap<SessionId, SessionState>,
    next_session: SessionId,
    verdicts: Vec<SolutionVerdict>,
    solutions: u64,
    blocks: u32,
}

impl TemplateProvider {
    /// A TP whose first template builds on a synthetic tip at `config.start_height`, timed `now`.
    pub fn new(config: TpConfig, now: u32) -> Self {
        let tip = Tip {
            height: config.start_height,
            prev_hash: sha256d(&config.seed.to_le_bytes()),
            nbits: config.nbits,
            min_ntime: now,
        };
        let mut tp = Self {
            config,
            tip,
            templates: BTreeMap::new(),
            current: 0,
            next_id: 1,
            sessions: BTreeMap::new(),
            next_session: 1,
            verdicts: Vec::new(),
            solutions: 0,
            blocks: 0,
        };
        tp.current = tp.build_template();
        tp
    }

    /// The tip the current template builds on.
    pub fn tip(&self) -> &Tip {
        &self.tip
    }

    /// The current template.
    pub fn current_template(&self) -> &Template {
        &self.templates[&self.current]
    }

    /// The SubmitSolution verdicts, oldest first: every one so far, or the latest
    /// [`MAX_VERDICTS_KEPT`] or more once that many came.
    pub fn verdicts(&self) -> &[SolutionVerdict] {
        &self.verdicts
    }

    /// SubmitSolution messages checked so far (kept or not).
    pub fn solutions_checked(&self) -> u64 {
        self.solutions
    }

    /// Opens a session for a new connection.
    pub fn open_session(&mut self) -> SessionId {
        let id = self.reserve_session();
        self.open_session_as(id);
        id
    }

    /// A session number for a connection whose handshake has not run yet (its log lines name it by
    /// this number from the start); [`TemplateProvider::open_session_as`] opens it.
    pub fn reserve_session(&mut self) -> SessionId {
        let id = self.next_session;
        self.next_session += 1;
        id
    }

    /// Opens the session `id` ([`TemplateProvider::reserve_session`]).
    pub fn open_session_as(&mut self, id: SessionId) {
        self.sessions.insert(id, SessionState::AwaitingSetup);
    }

    /// Forgets a session (the connection went away).
    pub fn close_session(&mut self, session: SessionId) {
        self.sessions.remove(&session);
    }

    fn build_template(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let seed = self.config.seed ^ id.rotate_left(17);
        let template = Template::build(id, self.tip.clone(), &self.config.params, seed);
        self.templates.insert(id, template);
        while self.templates.len() > self.config.keep_templates.max(1) {
            self.templates.pop_first();
        }
        id
    }

    /// Handles one message of `session` at `now` (unix seconds).
    pub fn handle(&mut self, session: SessionId, message: &Message<'_>, now: u32) -> Vec<Output> {
        let Some(state) = self.sessions.get(&session).cloned() else {
            return vec![Output::Close {
                session,
                reason: "unknown session".into(),
            }];
        };
        match (state, message) {
            (SessionState::Closed, _) => Vec::new(),
            (SessionState::AwaitingSetup, Message::SetupConnection(setup)) => {
                let refuse = |code: &str| {
                    vec![
                        send(
                            session,
                            SetupConnectionError {
                                flags: 0,
                                error_code: Str0_255::new(code.as_bytes().to_vec())
                                    .expect("short error code"),
                            }
                            .into(),
                        ),
                        Output::Close {
                            session,
                            reason: format!("SetupConnection refused: {code}"),
                        },
                    ]
                };
                if setup.protocol != PROTOCOL_TEMPLATE_DISTRIBUTION {
                    self.sessions.insert(session, SessionState::Closed);
                    return refuse("unsupported-protocol");
                }
                if !(setup.min_version..=setup.max_version).contains(&2) {
                    self.sessions.insert(session, SessionState::Closed);
                    return refuse("protocol-version-mismatch");
                }
                self.sessions.insert(
                    session,
                    SessionState::Ready {
                        constraints: None,
                        has_template: false,
                    },
                );
                vec![send(
                    session,
                    SetupConnectionSuccess {
                        used_version: 2,
                        flags: 0,
                    }
                    .into(),
                )]
            }
            (SessionState::AwaitingSetup, other) => {
                self.sessions.insert(session, SessionState::Closed);
                vec![Output::Close {
                    session,
                    reason: format!("expected SetupConnection first, got {}", other.name()),
                }]
            }
            (SessionState::Ready { has_template, .. }, Message::CoinbaseOutputConstraints(c)) => {
                self.sessions.insert(
                    session,
                    SessionState::Ready {
                        constraints: Some((
                            c.coinbase_output_max_additional_size,
                            c.coinbase_output_max_additional_sigops,
                        )),
                        has_template: true,
                    },
                );
                if has_template {
                    Vec::new()
                } else {
                    self.template_messages(session, true)
                }
            }
            (SessionState::Ready { .. }, Message::RequestTransactionData(request)) => {
                vec![send(session, self.transaction_data(request.template_id))]
            }
            (SessionState::Ready { .. }, Message::SubmitSolution(submitted)) => {
                let template = self.templates.get(&submitted.template_id);
                let verdict = solution::check(template, submitted, &self.tip.prev_hash, now);
                self.solutions += 1;
                if self.verdicts.len() >= MAX_VERDICTS_KEPT * 2 {
                    self.verdicts.drain(..MAX_VERDICTS_KEPT);
                }
                self.verdicts.push(verdict.clone());
                let mut out = vec![Output::Solution {
                    session,
                    verdict: verdict.clone(),
                }];
                if verdict.valid && self.config.advance_on_block {
                    let hash = verdict.block.as_deref().map(|block| sha256d(&block[..80]));
                    out.extend(self.advance(hash, now));
                }
                out
            }
            (SessionState::Ready { .. }, other) => vec![Output::Unexpected {
                session,
                message: other.name().to_owned(),
            }],
        }
    }

    /// RequestTransactionData's answer.
    fn transaction_data(&self, template_id: u64) -> Message<'static> {
        let error = |code: &str| {
            RequestTransactionDataError {
                template_id,
                error_code: Str0_255::new(code.as_bytes().to_vec()).expect("short error code"),
            }
            .into()
        };
        let Some(template) = self.templates.get(&template_id) else {
            return error("template-id-not-found");
        };
        if template.tip.prev_hash != self.tip.prev_hash {
            return error("stale-template-id");
        }
        let excess = if template.is_segwit() {
            template.witness_reserved_value.to_vec()
        } else {
            Vec::new()
        };
        let list: Option<Vec<B0_16M<'static>>> = template
            .transaction_bytes()
            .into_iter()
            .map(|t| B0_16M::new(t).ok())
            .collect();
        match (
            B0_64K::new(excess),
            list.and_then(|l| Seq0_64K::new(l).ok()),
        ) {
            (Ok(excess_data), Some(transaction_list)) => RequestTransactionDataSuccess {
                template_id,
                excess_data,
                transaction_list,
            }
            .into(),
            _ => error("template-too-large"),
        }
    }

    /// NewTemplate for the current template (future or not), then SetNewPrevHash when `future`.
    fn template_messages(&self, session: SessionId, future: bool) -> Vec<Output> {
        let t = self.current_template();
        let new_template = NewTemplate {
            template_id: t.id,
            future_template: future,
            version: t.version,
            coinbase_tx_version: t.coinbase_tx_version,
            coinbase_prefix: B0_255::new(t.coinbase_prefix.clone()).expect("BIP34 push is short"),
            coinbase_tx_input_sequence: t.coinbase_input_sequence,
            coinbase_tx_value_remaining: t.coinbase_value_remaining,
            coinbase_tx_outputs_count: t.coinbase_outputs.len() as u32,
            coinbase_tx_outputs: B0_64K::new(t.coinbase_outputs_bytes())
                .expect("at most one commitment output"),
            coinbase_tx_locktime: t.coinbase_locktime,
            merkle_path: Seq0_255::new(t.merkle_path.iter().map(|h| U256(*h)).collect())
                .expect("a path of at most 255 levels"),
        };
        let mut out = vec![send(session, new_template.into())];
        if future {
            out.push(send(session, self.prev_hash_message(t.id)));
        }
        out
    }

    fn prev_hash_message(&self, template_id: u64) -> Message<'static> {
        SetNewPrevHashTdp {
            template_id,
            prev_hash: U256(self.tip.prev_hash),
            header_timestamp: self.tip.min_ntime,
            n_bits: self.tip.nbits,
            target: U256(compact_to_target(self.tip.nbits).unwrap_or([0xff; 32])),
        }
        .into()
    }

    fn ready_sessions(&self) -> Vec<SessionId> {
        self.sessions
            .iter()
            .filter(|(_, s)| {
                matches!(
                    s,
                    SessionState::Ready {
                        has_template: true,
                        ..
                    }
                )
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// A new block on top of `found` (or a synthetic one): a new tip, a new future template and
    /// SetNewPrevHash for every session that has templates.
    fn advance(&mut self, found: Option<[u8; 32]>, now: u32) -> Vec<Output> {
        let prev_hash = found.unwrap_or_else(|| {
            let mut material = self.tip.prev_hash.to_vec();
            material.extend_from_slice(&self.tip.height.to_le_bytes());
            sha256d(&material)
        });
        self.blocks += 1;
        self.tip = Tip {
            height: self.tip.height + 1,
            prev_hash,
            nbits: self.config.nbits,
            min_ntime: now.max(self.tip.min_ntime),
        };
        self.current = self.build_template();
        self.ready_sessions()
            .into_iter()
            .flat_map(|s| self.template_messages(s, true))
            .collect()
    }

    /// A block found elsewhere: the chain moves on (a driver calls this on a timer or on demand).
    pub fn new_block(&mut self, now: u32) -> Vec<Output> {
        self.advance(None, now)
    }

    /// A new (non-future) template on the same tip, as when the mempool changes.
    pub fn update_template(&mut self) -> Vec<Output> {
        self.current = self.build_template();
        self.ready_sessions()
            .into_iter()
            .flat_map(|s| self.template_messages(s, false))
            .collect()
    }

    /// Blocks moved on so far (found or on demand).
    pub fn blocks(&self) -> u32 {
        self.blocks
    }
}

fn send(session: SessionId, message: Message<'static>) -> Output {
    Output::Send { session, message }
}
