//! What a check is: its identity in the catalogue (id, spec section, level, role) and how it runs.
//! What running it gives is [`crate::verdict`].

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use crate::serve::ServeCtx;
use crate::session::Ctx;
use crate::verdict::Outcome;

/// A requirement level (RFC 2119, as the spec words it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Must,
    Should,
    May,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        }
    }
}

/// The role of the implementation a check is aimed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A Mining-protocol server: a pool, or a proxy acting as upstream.
    Pool,
    /// A Mining-protocol client of any kind, as the monitor's client rules judge it
    /// ([`crate::monitor::CLIENT_RULES`]): a device, a proxy's or a translator's upstream side.
    Client,
    /// A Mining-protocol client the suite serves as its pool (`--role device`): firmware, a CPU
    /// miner, the upstream side of a proxy or translator ([`crate::serve`]).
    Device,
    /// A translator (`--role translator`): SV1 miners below it (the suite's), the suite as its SV2
    /// pool. Its checks are the device's and its own.
    Translator,
    /// An SV2 proxy (`--role proxy`): the suite's devices below it, the suite as its pool. Its
    /// checks are the device's (its upstream side), its own, and the pool rules of the monitor
    /// over its downstream side.
    Proxy,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Pool => "pool",
            Role::Client => "client",
            Role::Device => "device",
            Role::Translator => "translator",
            Role::Proxy => "proxy",
        }
    }
}

/// An active check: it opens its own connections through the context and returns an outcome.
pub type RunFn = fn(Ctx) -> Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// A check of a client: the suite listens, plays the pool, and the implementation under test
/// connects ([`crate::serve`]).
pub type ServeFn = fn(ServeCtx) -> Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// How a check is run.
#[derive(Clone, Copy)]
pub enum Kind {
    /// It drives the target itself, on fresh connections.
    Active(RunFn),
    /// It serves the client under test on the connections it makes to the suite.
    Serve(ServeFn),
    /// A rule of the passive monitor, judged over every connection of the run (see
    /// [`crate::monitor`]).
    Monitor,
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Active(_) => f.write_str("Active"),
            Kind::Serve(_) => f.write_str("Serve"),
            Kind::Monitor => f.write_str("Monitor"),
        }
    }
}

/// One entry of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    /// Stable id, `group.name` (e.g. `setup.reply`).
    pub id: &'static str,
    /// The spec section the requirement is in (e.g. "3.6.1", "ext1 4.1").
    pub section: &'static str,
    /// The requirement's level.
    pub level: Level,
    /// The role under test.
    pub role: Role,
    /// The number of the requirement in CATALOG.md §F, when it comes from there (None: implied by
    /// the spec, added here).
    pub catalog: Option<u16>,
    /// One line: what is required.
    pub title: &'static str,
    pub kind: Kind,
}

impl Check {
    pub fn is_monitor(&self) -> bool {
        matches!(self.kind, Kind::Monitor)
    }
}

/// Declares an active check: `active!(id, section, level, catalog, "title", path::to::async_fn)`,
/// where the function is `async fn(Ctx) -> Outcome`.
#[macro_export]
macro_rules! active {
    ($id:expr, $section:expr, $level:ident, $catalog:expr, $title:expr, $run:path) => {
        $crate::check::Check {
            id: $id,
            section: $section,
            level: $crate::check::Level::$level,
            role: $crate::check::Role::Pool,
            catalog: $catalog,
            title: $title,
            kind: $crate::check::Kind::Active(|ctx| Box::pin($run(ctx))),
        }
    };
}

/// Declares a check of a client the suite serves: `serve!(id, section, level, catalog, "title",
/// path::to::async_fn)`, where the function is `async fn(ServeCtx) -> Outcome`.
#[macro_export]
macro_rules! serve {
    ($id:expr, $section:expr, $level:ident, $catalog:expr, $title:expr, $run:path) => {
        $crate::serve!(Device: $id, $section, $level, $catalog, $title, $run)
    };
    ($role:ident: $id:expr, $section:expr, $level:ident, $catalog:expr, $title:expr, $run:path) => {
        $crate::check::Check {
            id: $id,
            section: $section,
            level: $crate::check::Level::$level,
            role: $crate::check::Role::$role,
            catalog: $catalog,
            title: $title,
            kind: $crate::check::Kind::Serve(|ctx| Box::pin($run(ctx))),
        }
    };
}
