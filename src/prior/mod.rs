//! Priors: embed the training set into the space where neighbours are found.
pub mod cli;
