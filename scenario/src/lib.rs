//! Faults as data: scenario files (`model`), the sans-IO engine that applies one to the frames of a
//! connection (`engine`), and the man-in-the-middle relay that stands between a client and a server,
//! terminating Noise on both legs, applying a scenario and recording both legs (`relay`); scripted
//! conversations (`script`), and network fuzzing of live servers built on them (`fuzz`).

pub mod engine;
pub mod fuzz;
pub mod launch;
pub mod model;
pub mod relay;
pub mod script;

pub use engine::{Applied, Engine, Step};
pub use model::{Action, Corruption, From, Rule, Scenario, ScenarioError};
pub use script::{play, play_checked, Ended, Script};
