//! Training: the TOML config that says what to build ([`config`]), the
//! sparse logistic regression that fits each head ([`SparseRecords`],
//! [`LogisticParams`] → [`LinearModel`] through linfa's traits, minimised
//! by L-BFGS over an objective summed in a fixed order), and the run that
//! reads every head's data, fits the shared featurizer, picks C and the
//! threshold on dev and assembles the model file's data ([`train`]); and
//! leaving one source out to see how a head transfers
//! ([`leave_one_source_out`]).

pub mod config;
mod lbfgs;
mod logistic;
mod objective;
mod records;
mod run;
mod transfer;

pub use config::{ClassWeight, ConfigError, HeadConfig, InvalidConfig, MixtureConfig, TrainConfig};
pub use lbfgs::Termination;
pub use logistic::{LinearModel, LogisticParams, LogisticValidParams, SolverError};
pub use records::{Csr, SparseRecords};
pub use run::{train, HeadSummary, Progress, Quiet, TrainError, TrainOptions, Trained};
pub use transfer::{leave_one_source_out, Skipped, Transfer, TransferError, TransferReport};
