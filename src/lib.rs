//! gps-ssl: GPS-SSL experiments (guided positive sampling for self-supervised learning) from one
//! run on a laptop to sweeps on a SLURM cluster. See README.md for the data flow.
pub mod atomic_file;
pub mod augment;
pub mod config;
pub mod data;
pub mod device;
pub mod eval;
pub mod exec;
pub mod export;
pub mod host;
pub mod info;
pub mod knn;
pub mod model;
pub mod numerics;
pub mod optim;
pub mod prior;
pub mod recipe;
pub mod resample;
pub mod results;
pub mod ssl;
pub mod sweep;
pub mod text;
pub mod torch_runtime;
pub mod train;
pub mod trained;
pub mod weights;
