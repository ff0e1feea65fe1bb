//! The training loop of one run: per step, anchors from a seeded permutation, guided positives
//! from the neighbour table, both augmented on the device, the SSL loss plus the online linear
//! probe on detached features, LARS with warmup-cosine. Checkpoints on schedule and on signals.

use super::checkpoint::{self, LoopState};
use super::prepare::Prepared;
use super::progress::Reporter;
use super::progress_record::{Phase, ProgressWriter};
use super::{Interrupted, RunOutcome, TrainOptions, signals};
use crate::augment::{Augmenter, view_pipelines};
use crate::config::RunSpec;
use crate::eval::health::{Health, HealthPairs};
use crate::eval::{self, FeatureExtractor};
use crate::knn::{PositiveSampler, SplitMix64};
use crate::model::{self, Backbone};
use crate::optim::Optimizer;
use crate::optim::WarmupCosine;
use crate::ssl::{self, MethodContext, SslMethod};
use anyhow::{Context, Result, bail};
use std::time::Instant;
use tch::nn;
use tch::{Device, Kind, Tensor};

/// Independent random streams derived from the run seed (see SplitMix64::for_step).
const STREAM_PERMUTATION: u64 = 1;
const STREAM_POSITIVES: u64 = 2;
const STREAM_AUG_ANCHOR: u64 = 3;
const STREAM_AUG_POSITIVE: u64 = 4;
const STREAM_HEALTH: u64 = 5;
/// The stream of the j-th of several positives: positive 0 keeps the single positive's stream,
/// the others get streams of their own (above every stream above).
fn stream(base: u64, j: u64) -> u64 {
    if j == 0 { base } else { base + 16 * j }
}
/// Read the loss back from the device this often (each read is a synchronisation).
const LOSS_CHECK_EVERY: usize = 20;

static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `backbone_init`: pretrained weights into the backbone, strictly by name and shape. With the
/// CIFAR stem the file's 7x7 `conv1.weight` has no place: solo-learn replaces conv1 by a fresh
/// 3x3 convolution after building the pretrained network, so that one tensor is left out (said
/// in the log), as is torchvision's classifier `fc`.
/// Returns what the row records: the file and its sha256.
pub fn init_backbone(vs: &nn::VarStore, file: &std::path::Path, stem: crate::recipe::Stem) -> Result<String> {
    let what = format!("field `backbone_init`: {}", file.display());
    let tensors = crate::weights::read(file).map_err(|e| e.context(what.clone()))?;
    crate::weights::check_finite(&tensors, &what)?;
    let prefixed: Vec<(String, Tensor)> = tensors.into_iter().map(|(n, t)| (format!("backbone.{n}"), t)).collect();
    let fc = crate::weights::Ignore { names: &["backbone.fc.weight", "backbone.fc.bias"], why: "torchvision's classifier; the backbone has none" };
    let stem_conv = crate::weights::Ignore { names: &["backbone.conv1.weight"], why: "the CIFAR stem's conv1 is a fresh 3x3 convolution, as solo-learn's" };
    // Only the backbone's variables take part (the heads and the probe keep their initialisation);
    // with the CIFAR stem, a 7x7 conv1 in the file is left out (and the model's 3x3 one kept).
    let file_conv = prefixed.iter().find(|(n, _)| n == "backbone.conv1.weight").map(|(_, t)| t.size());
    let skip_stem = stem == crate::recipe::Stem::Cifar && file_conv.is_some_and(|s| s.get(2) == Some(&7));
    let targets = vs.variables().into_iter().filter(|(n, _)| n.starts_with("backbone.") && !(skip_stem && n == "backbone.conv1.weight")).collect();
    let mut ignore = vec![fc];
    if skip_stem {
        ignore.push(stem_conv);
    }
    let loaded = crate::weights::load_strict_into(targets, prefixed, &ignore, &what)?;
    eprintln!(
        "backbone_init: {} tensors from {}{}",
        loaded.set,
        file.display(),
        if loaded.ignored.is_empty() { String::new() } else { format!("; not used: {}", loaded.ignored.join(", ")) }
    );
    let sha = crate::weights::sha256(file)?;
    Ok(format!("{} sha256:{}", file.display(), &sha[..16]))
}

/// A loss that is NaN or infinite: the run failed and must not write a result that looks fine.
#[derive(Debug, thiserror::Error)]
#[error("the loss became {value} at epoch {epoch}, step {step}: the run failed (try a lower `optimizer.lr`, or `precision: fp32`)")]
pub struct NonFiniteLoss {
    pub value: f64,
    pub epoch: usize,
    pub step: u64,
}

pub struct Trainer<'a> {
    spec: &'a RunSpec,
    device: Device,
    vs: nn::VarStore,
    backbone: Box<dyn Backbone>,
    probe: nn::Linear,
    method: Box<dyn SslMethod>,
    opt: Optimizer,
    schedule: WarmupCosine,
    /// View 1's and view 2's pipelines (they differ for the authors' asymmetric baselines).
    augmenters: [Augmenter; 2],
    sampler: PositiveSampler,
    /// τ of the prior's table (candidates within a distance), for the row.
    prior_tau: Option<f64>,
    /// How many candidates the prior's table gives each image (None for a k-nearest table).
    prior_candidates: Option<(crate::knn::CandidateCounts, f64)>,
    /// The fixed positive pairs on which alignment and uniformity are measured.
    health_pairs: HealthPairs,
    train_images: Tensor,
    train_labels: Tensor,
    train_labels_cpu: Vec<i64>,
    test_images: Tensor,
    test_labels: Tensor,
    num_classes: usize,
    steps_per_epoch: usize,
    total_steps: u64,
    /// bf16 autocast on this device's type (None: fp32).
    autocast: Option<Device>,
    channels_last: bool,
    /// The evaluation transform (resize, centre crop) of the recipe.
    eval: crate::recipe::EvalTransform,
    /// `backbone_init` as recorded in the row (path and sha256).
    backbone_init: Option<String>,
    state: LoopState,
    /// ssl-loss sum since the last read-back, on the device.
    pending_loss: Tensor,
    pending_steps: u64,
    /// How the run's earlier attempts ended (from its progress record), for the result row.
    earlier_attempts: Vec<String>,
}

impl<'a> Trainer<'a> {
    pub fn new(spec: &'a RunSpec, data: Prepared, device: Device) -> Result<Trainer<'a>> {
        let paths = crate::exec::ExecPaths::for_run(spec, device)?;
        Self::with_paths(spec, data, device, paths)
    }

    /// A trainer taking the execution choices `paths` whatever the device: the CUDA choices on a
    /// CPU (tests, `gps info --check`) or fp32 on a GPU (the self-check's reference).
    pub fn with_paths(spec: &'a RunSpec, data: Prepared, device: Device, paths: crate::exec::ExecPaths) -> Result<Trainer<'a>> {
        if device.is_cuda() {
            tch::Cuda::cudnn_set_benchmark(true);
        }
        let (autocast, channels_last) = (paths.autocast, paths.channels_last);
        // libtorch's default generator is process-wide: hold it while seeding and drawing the
        // initial weights so runs in parallel threads (tests, benchmarks) start identically.
        let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
        tch::manual_seed(spec.seed as i64);

        let in_channels = data.train.channels() as i64;
        let num_classes = data.train.num_classes();
        let recipe = &data.recipe;
        let vs = nn::VarStore::new(device);
        let backbone = model::build_backbone_with(spec.backbone, &(vs.root() / "backbone"), in_channels, recipe.stem);
        let backbone_init = match &spec.backbone_init {
            Some(file) => Some(init_backbone(&vs, file, recipe.stem)?),
            None => None,
        };
        let feat_dim = backbone.out_dim();
        let probe = model::init::linear(vs.root() / "probe", feat_dim, num_classes as i64, true);
        let method = ssl::build(
            spec.method,
            MethodContext {
                heads: vs.root() / "method",
                feat_dim,
                temperature: spec.temperature,
                backbone: spec.backbone,
                in_channels,
                stem: recipe.stem,
                device,
                online: &vs,
                channels_last,
            },
        );
        if channels_last {
            model::vars_to_channels_last(&vs);
        }

        let (default_lr, default_wd) = ssl::default_lr_wd(spec.method);
        let scale = spec.batch_size as f64 / 256.0;
        let lr = spec.optimizer.lr.unwrap_or(default_lr) * scale;
        let wd = spec.optimizer.weight_decay.unwrap_or(default_wd);
        let classifier_lr = spec.optimizer.classifier_lr * scale;
        let opt = Optimizer::new(spec.optimizer.kind, super::step::param_groups(&vs, wd, classifier_lr / lr), spec.optimizer.momentum, spec.optimizer.eta)
            .with_kernel(paths.lars);

        let n = data.train.len();
        let steps_per_epoch = n / spec.batch_size; // drop_last, as the authors
        let total_steps = (steps_per_epoch * spec.epochs) as u64;
        // solo-learn warms up for warmup_epochs whatever the run's length.
        let schedule = WarmupCosine { base_lr: lr, warmup_steps: (spec.optimizer.warmup_epochs * steps_per_epoch) as u64, total_steps };

        let (mean, std) = (&recipe.stats.mean, &recipe.stats.std);
        let guided = !matches!(spec.prior, crate::config::PriorSpec::None);
        let augmenters = view_pipelines(&spec.augmentation, spec.method, guided).map(|p| Augmenter::new(p, mean, std, device).with_crop(recipe.crop));
        let eval = recipe.eval;
        let train_labels_cpu = data.train.labels_vec();
        let prior_candidates = data.table.fixed_k().is_none().then(|| (data.table.candidate_counts(), data.table.self_only_share()));
        let prior_tau = data.tau;
        let sampler = PositiveSampler::new(data.table);
        let health_pairs = HealthPairs::new(n, &sampler, spec.seed, STREAM_HEALTH, device);
        Ok(Trainer {
            earlier_attempts: Vec::new(),
            spec,
            device,
            backbone,
            probe,
            method,
            opt,
            schedule,
            augmenters,
            sampler,
            prior_tau,
            prior_candidates,
            health_pairs,
            train_images: data.train.images.to_device(device),
            train_labels: data.train.labels.to_device(device),
            train_labels_cpu,
            test_images: data.test.images.to_device(device),
            test_labels: data.test.labels.to_device(device),
            num_classes,
            steps_per_epoch,
            total_steps,
            autocast,
            channels_last,
            eval,
            backbone_init,
            state: LoopState { run_id: spec.run_id(), ..Default::default() },
            pending_loss: Tensor::zeros([], (Kind::Float, device)),
            pending_steps: 0,
            vs,
        })
    }

    /// Restores the newest good checkpoint in `dir`, if any; returns the epoch it resumes from.
    pub fn resume(&mut self, dir: &std::path::Path) -> Result<Option<usize>> {
        // A checkpoint being written when an earlier attempt was killed (SIGKILL after SLURM's
        // KillWait, a lost node) is a temp file no one will finish: it is never read, and goes now.
        let removed = checkpoint::remove_half_written(dir);
        if removed > 0 {
            eprintln!("[gps] removed {removed} half-written checkpoint file(s) an earlier attempt left in {}", dir.display());
        }
        let Some((state, tensors, path)) = checkpoint::load_latest(dir, &self.state.run_id)? else {
            return Ok(None);
        };
        let current = crate::numerics::NUMERICS_VERSION;
        if state.numerics != Some(current) {
            bail!(
                "checkpoint {} was written by gps with numerics version {} but this gps computes version {current} (see `gps info`): \
                 resuming would mix two versions' arithmetic in one run. Finish the run with the gps that started it, or delete {} to run it anew",
                path.display(),
                crate::numerics::label(state.numerics.map(i64::from)),
                dir.display()
            );
        }
        {
            let _guard = tch::no_grad_guard();
            for (name, mut t) in self.vs.variables() {
                let src = checkpoint::take(&tensors, &format!("model.{name}"))?;
                if src.size() != t.size() {
                    bail!("checkpoint {}: `{name}` has shape {:?}, the model {:?}", path.display(), src.size(), t.size());
                }
                t.copy_(src);
            }
        }
        let strip = |prefix: &str| -> Vec<(String, Tensor)> {
            tensors.iter().filter_map(|(n, t)| n.strip_prefix(prefix).map(|s| (s.to_string(), t.to_device(self.device)))).collect()
        };
        self.opt.load_state(&strip("opt."))?;
        self.method.load_state(&strip("method."))?;
        // A table rebuilt from the model (`prior_refresh`) belongs to the run: the resumed run
        // draws from the one the uninterrupted run would.
        if let Some(table) = crate::knn::NeighbourTable::from_tensors(&tensors, "table.")? {
            if table.len() != self.train_labels_cpu.len() {
                bail!("checkpoint {}: its neighbour table covers {} images, the training set has {}", path.display(), table.len(), self.train_labels_cpu.len());
            }
            self.sampler = PositiveSampler::new(table);
        }
        let epoch = state.epoch;
        eprintln!("resuming from {} (epoch {}, step {})", path.display(), state.epoch, state.global_step);
        self.state = state;
        self.state.health.pad_to(epoch);
        Ok(Some(epoch))
    }

    fn save_checkpoint(&self, dir: &std::path::Path) -> Result<()> {
        let mut tensors: Vec<(String, Tensor)> = self.vs.variables().into_iter().map(|(n, t)| (format!("model.{n}"), t)).collect();
        tensors.extend(self.opt.state().into_iter().map(|(n, t)| (format!("opt.{n}"), t)));
        tensors.extend(self.method.state().into_iter().map(|(n, t)| (format!("method.{n}"), t)));
        if !self.state.refresh.epochs.is_empty() {
            tensors.extend(self.sampler.table().to_tensors().into_iter().map(|(n, t)| (format!("table.{n}"), t)));
        }
        checkpoint::save(dir, &self.state, tensors)?;
        Ok(())
    }

    /// Trains until the last epoch, or until a stop signal (checkpoint, then `Interrupted`).
    pub fn fit(&mut self, opts: &TrainOptions) -> Result<()> {
        let spec = self.spec;
        let reporter = Reporter::new(opts.progress, self.total_steps, self.state.global_step);
        let mut record = ProgressWriter::new(&opts.ckpt_dir, &self.state, spec.epochs, self.total_steps, spec.batch_size);
        let b = spec.batch_size;
        while self.state.epoch < spec.epochs {
            let epoch = self.state.epoch;
            if spec.prior_refresh.due_before(epoch) && !self.state.refresh.epochs.contains(&epoch) {
                self.refresh_table()?;
                reporter.message(self.refresh_message());
            }
            let perm = SplitMix64::for_step(spec.seed, STREAM_PERMUTATION, epoch as u64).permutation(self.train_images.size()[0] as usize);
            let started = Instant::now();
            let mut samples = 0u64;
            for s in self.state.step_in_epoch..self.steps_per_epoch {
                if let Some(signal) = signals::pending() {
                    self.drain_loss()?;
                    self.state.train_s += started.elapsed().as_secs_f64();
                    self.state.samples_seen += samples;
                    self.save_checkpoint(&opts.ckpt_dir)?;
                    record.interrupted(&self.state, signal);
                    reporter.finish();
                    return Err(Interrupted { signal, epoch, step: self.state.global_step }.into());
                }
                let _ = self.step(&perm[s * b..(s + 1) * b]);
                samples += b as u64;
                self.state.step_in_epoch = s + 1;
                self.state.global_step += 1;
                reporter.step();
                record.step(&self.state);
                if (s + 1) % LOSS_CHECK_EVERY == 0 {
                    self.drain_loss()?;
                }
            }
            self.drain_loss()?; // also waits for the device, so the time below is real
            self.state.train_s += started.elapsed().as_secs_f64();
            self.state.samples_seen += samples;
            let epoch_loss = self.state.epoch_loss_sum / self.state.epoch_loss_steps.max(1) as f64;
            self.state.epoch_losses.push(epoch_loss);
            self.state.epoch_loss_sum = 0.0;
            self.state.epoch_loss_steps = 0;
            self.state.epoch += 1;
            self.state.step_in_epoch = 0;
            let last = self.state.epoch == spec.epochs;
            let evaluate = last || self.state.epoch.is_multiple_of(spec.eval.every_epochs);
            let (acc, health) = if evaluate { self.evaluate() } else { (f64::NAN, Health::NOT_EVALUATED) };
            self.state.health.push(health);
            if let Some(warning) = health.collapse_warning(self.backbone.out_dim(), self.state.epoch) {
                reporter.warn(warning);
            }
            self.state.epoch_probe_top1.push(acc);
            if acc > self.state.best_probe_top1 || self.state.best_epoch == 0 && acc.is_finite() {
                self.state.best_probe_top1 = acc;
                self.state.best_epoch = self.state.epoch;
            }
            let sps = self.state.samples_seen as f64 / self.state.train_s.max(1e-9);
            reporter.message(format!(
                "epoch {}/{} loss {:.4} probe top-1 {:.2}% (best {:.2}%) {:.0} samples/s lr {:.4}",
                self.state.epoch,
                spec.epochs,
                epoch_loss,
                100.0 * acc,
                100.0 * self.state.best_probe_top1,
                sps,
                self.schedule.lr(self.state.global_step)
            ));
            // The last epoch's checkpoint is the trained model `gps export` and `gps eval linear` read.
            if last || spec.checkpoint_every > 0 && self.state.epoch.is_multiple_of(spec.checkpoint_every) {
                self.save_checkpoint(&opts.ckpt_dir)?;
            }
            record.write(&self.state, Phase::Training);
        }
        record.write(&self.state, Phase::Evaluating);
        self.earlier_attempts = record.earlier().iter().map(|a| a.describe()).collect();
        reporter.finish();
        Ok(())
    }

    /// Rebuilds the neighbour table from the model being trained (`prior_refresh`), before
    /// epoch `self.state.epoch`: the whole training set embedded in eval mode without gradients
    /// (the authors' `get_embeddings` sets neither: README, Refresh), by the backbone or the
    /// projector, its images as the evaluation sees them (the authors' `noTransform`: the crop
    /// size, the dataset's statistics), then the table built as the prior's was.
    fn refresh_table(&mut self) -> Result<()> {
        let started = Instant::now();
        let features = self.extractor().features(&self.train_images);
        let emb = match self.spec.prior_refresh.features {
            crate::config::RefreshFeatures::Backbone => features,
            crate::config::RefreshFeatures::Projector => {
                let _guard = tch::no_grad_guard();
                crate::exec::autocast(self.autocast, || self.method.project(&features)).to_kind(Kind::Float)
            }
        };
        let (table, tau) = crate::neighbours::table_from_embedding(self.spec, &emb, self.device).context("rebuilding the neighbour table from the model")?;
        let (purity, _) = table.label_purity(&self.train_labels_cpu, self.num_classes);
        let r = &mut self.state.refresh;
        r.epochs.push(self.state.epoch);
        r.purity.push(purity);
        r.seconds.push(started.elapsed().as_secs_f64());
        r.tau.push(tau.unwrap_or(f64::NAN));
        r.candidates_mean.push(table.candidate_counts().mean);
        self.sampler = PositiveSampler::new(table);
        Ok(())
    }

    fn refresh_message(&self) -> String {
        let r = &self.state.refresh;
        let last = r.epochs.len() - 1;
        let tau = if r.tau[last].is_nan() { String::new() } else { format!(", τ {:.4}, {:.1} candidates per image", r.tau[last], r.candidates_mean[last]) };
        format!("neighbour table rebuilt from the model after epoch {}: purity {:.2}%{tau} ({:.1} s)", r.epochs[last], 100.0 * r.purity[last], r.seconds[last])
    }

    /// One training step on `anchors`; returns the step's (SSL loss, probe loss), detached.
    fn step(&mut self, anchors: &[u32]) -> (Tensor, Tensor) {
        let spec = self.spec;
        let step = self.state.global_step;
        // m positives per anchor, each drawn uniformly among its candidates with replacement (the
        // authors' `np.random.randint(0, len(candidates), num_nns)`); the first from the stream
        // a single positive has always used, so `positives: 1` draws what it always drew.
        let positives: Vec<Vec<u32>> =
            (0..spec.positives as u64).map(|j| self.sampler.sample(anchors, &mut SplitMix64::for_step(spec.seed, stream(STREAM_POSITIVES, j), step))).collect();
        for p in &positives {
            let same = anchors.iter().zip(p).filter(|&(&a, &p)| self.train_labels_cpu[a as usize] == self.train_labels_cpu[p as usize]).count();
            self.state.positives_same_label += same as u64;
            self.state.positives_total += anchors.len() as u64;
        }

        let to_index = |v: &[u32]| Tensor::from_slice(&v.iter().map(|&i| i as i64).collect::<Vec<_>>()).to_device(self.device);
        let ia = to_index(anchors);
        let mut indices = vec![ia.shallow_clone()];
        let mut views = vec![self.augmenters[0].apply(&self.train_images.index_select(0, &ia), &mut SplitMix64::for_step(spec.seed, STREAM_AUG_ANCHOR, step))];
        for (j, p) in positives.iter().enumerate() {
            // Every positive through the second pipeline (under GPS both are the first: the fork's).
            let ip = to_index(p);
            let rng = &mut SplitMix64::for_step(spec.seed, stream(STREAM_AUG_POSITIVE, j as u64), step);
            views.push(self.augmenters[1].apply(&self.train_images.index_select(0, &ip), rng));
            indices.push(ip);
        }
        if self.channels_last {
            views = views.iter().map(model::to_channels_last).collect();
        }
        // The probe learns each view with its own label (spec §1.5).
        let labels: Vec<Tensor> = indices.iter().map(|i| self.train_labels.index_select(0, i)).collect();
        let (x, y): (Vec<&Tensor>, Vec<&Tensor>) = (views.iter().collect(), labels.iter().collect());
        let losses = super::step::losses(self.backbone.as_ref(), self.method.as_mut(), &self.probe, &x, &y, self.autocast);
        let (ssl_loss, probe_loss) = (losses.ssl, losses.probe);
        let total = &ssl_loss + &probe_loss;
        self.opt.backward_step(&total, self.schedule.lr(step));
        self.method.after_step((step + 1) as f64 / self.total_steps.max(1) as f64);
        self.pending_loss += ssl_loss.detach().to_kind(Kind::Float);
        self.pending_steps += 1;
        (ssl_loss.detach(), probe_loss.detach())
    }

    /// `n` steps over the first batches of epoch 0's order, from the trainer's current step on,
    /// returning each step's (SSL loss, probe loss) and the loss tensors' kinds (the self-check:
    /// two trainers from the same state take the same batches and augmentations).
    pub fn check_steps(&mut self, n: usize) -> Result<Vec<(f64, f64, Kind)>> {
        let b = self.spec.batch_size;
        let count = self.train_images.size()[0] as usize;
        let perm = SplitMix64::for_step(self.spec.seed, STREAM_PERMUTATION, 0).permutation(count);
        let batches = (count / b).max(1);
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let s = self.state.global_step as usize % batches;
            let (ssl, probe) = self.step(&perm[s * b..(s + 1) * b]);
            self.state.global_step += 1;
            out.push((ssl.double_value(&[]), probe.double_value(&[]), ssl.kind()));
        }
        self.drain_loss()?;
        Ok(out)
    }

    /// The online network's variables (backbone, heads, probe), by name.
    pub fn variables(&self) -> std::collections::HashMap<String, Tensor> {
        self.vs.variables()
    }

    /// Takes another trainer's weights and method state (a target network, a queue), so two
    /// trainers on different devices start from the same point (their initialisations are drawn
    /// by each device's own generator).
    pub fn copy_weights_from(&mut self, other: &Trainer) -> Result<()> {
        let _guard = tch::no_grad_guard();
        let theirs = other.vs.variables();
        for (name, mut var) in self.vs.variables() {
            let src = theirs.get(&name).with_context(|| format!("the other trainer has no `{name}`"))?;
            var.copy_(&src.to_device(self.device).contiguous());
        }
        let state: Vec<(String, Tensor)> = other.method.state().into_iter().map(|(n, t)| (n, t.to_device(self.device))).collect();
        self.method.load_state(&state)
    }

    /// Writes a checkpoint of the trainer as it stands (the self-check's round trip).
    pub fn checkpoint_to(&self, dir: &std::path::Path) -> Result<()> {
        self.save_checkpoint(dir)
    }

    /// Throughput of the training step alone: `warmup` untimed steps, then `steps` timed ones
    /// (anchors per second, the device synchronised at both ends). No evaluation, no checkpoint.
    pub fn bench(&mut self, warmup: usize, steps: usize) -> Result<f64> {
        let b = self.spec.batch_size;
        let n = self.train_images.size()[0] as usize;
        let perm = SplitMix64::for_step(self.spec.seed, STREAM_PERMUTATION, 0).permutation(n);
        let batches = (n / b).max(1);
        let run = |count: usize, trainer: &mut Self| -> Result<()> {
            for i in 0..count {
                let s = i % batches;
                let _ = trainer.step(&perm[s * b..(s + 1) * b]);
                trainer.state.global_step += 1;
            }
            trainer.drain_loss()
        };
        run(warmup, self)?;
        let t = Instant::now();
        run(steps, self)?;
        Ok((steps * b) as f64 / t.elapsed().as_secs_f64())
    }

    /// (bf16 autocast, channels-last) as this trainer runs.
    pub fn precision(&self) -> (bool, bool) {
        (self.autocast.is_some(), self.channels_last)
    }

    /// Moves the device-side loss sum into the bookkeeping; a non-finite loss fails the run.
    fn drain_loss(&mut self) -> Result<()> {
        if self.pending_steps == 0 {
            return Ok(());
        }
        let sum = self.pending_loss.double_value(&[]);
        if !sum.is_finite() {
            return Err(NonFiniteLoss { value: sum, epoch: self.state.epoch + 1, step: self.state.global_step }.into());
        }
        self.state.epoch_loss_sum += sum;
        self.state.epoch_loss_steps += self.pending_steps;
        self.pending_loss = Tensor::zeros([], (Kind::Float, self.device));
        self.pending_steps = 0;
        Ok(())
    }

    fn extractor(&self) -> FeatureExtractor<'_> {
        FeatureExtractor {
            backbone: self.backbone.as_ref(),
            augmenter: &self.augmenters[0],
            eval: self.eval,
            channels_last: self.channels_last,
            autocast: self.autocast,
        }
    }

    /// Probe top-1 and representation health, from one pass over the test split.
    fn evaluate(&self) -> (f64, Health) {
        let ex = self.extractor();
        let f = ex.features(&self.test_images);
        let acc = eval::probe_top1(&self.probe, &f, &self.test_labels);
        (acc, self.health_pairs.measure(&ex, &self.augmenters, &self.train_images, &f))
    }

    /// Final metrics: the weighted k-NN classifier needs the training features once.
    pub fn outcome(&self, started: Instant, resumed_from_epoch: Option<usize>) -> RunOutcome {
        let ex = self.extractor();
        let train_f = ex.features(&self.train_images);
        let test_f = ex.features(&self.test_images);
        let knn =
            eval::knn_top1(&train_f, &self.train_labels, &test_f, &self.test_labels, self.spec.eval.knn_k, self.spec.eval.knn_temperature, self.num_classes);
        let s = &self.state;
        RunOutcome {
            probe_top1_best: s.best_probe_top1,
            probe_top1_last: s.epoch_probe_top1.last().copied().unwrap_or(f64::NAN),
            best_epoch: s.best_epoch,
            knn_top1: knn,
            positive_purity: s.positives_same_label as f64 / s.positives_total.max(1) as f64,
            final_loss: s.epoch_losses.last().copied().unwrap_or(f64::NAN),
            epoch_losses: s.epoch_losses.clone(),
            epoch_probe_top1: s.epoch_probe_top1.clone(),
            health: s.health.clone(),
            epochs: s.epoch,
            steps: s.global_step,
            wall_s: started.elapsed().as_secs_f64(),
            train_s: s.train_s,
            samples_per_s: s.samples_seen as f64 / s.train_s.max(1e-9),
            device: crate::device::describe(self.device),
            resumed_from_epoch,
            earlier_attempts: self.earlier_attempts.clone(),
            backbone_init: self.backbone_init.clone(),
            tau: self.prior_tau,
            candidates: self.prior_candidates.map(|(c, self_only)| super::CandidateStats { mean: c.mean, median: c.median, min: c.min, max: c.max, self_only }),
            refresh: s.refresh.clone(),
        }
    }
}
