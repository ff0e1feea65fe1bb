//! Reading many small Parquet files: spread over the cores, and a reader panic on a damaged file
//! turned into a reason rather than a crash (one bad file must cost that file, not the report).

thread_local! {
    /// Set while `catch_panic` runs on this thread: its panic is reported as a reason, not printed.
    static CATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, turning a panic into its message. The Parquet reader panics on some damaged files (a
/// footer that promises more rows than its pages hold); that must cost one file, not the report.
pub(super) fn catch_panic<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    static QUIET_HOOK: std::sync::Once = std::sync::Once::new();
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CATCHING.with(|c| c.get()) {
                previous(info);
            }
        }));
    });
    CATCHING.with(|c| c.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(false));
    result.map_err(|payload| {
        payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned()).unwrap_or_else(|| "no message".into())
    })
}

/// `f` of every item, the items split over the cores in order; the results in the items' order.
pub(super) fn on_cores<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    parts_on_cores(items, |part| part.iter().map(&f).collect::<Vec<R>>()).into_iter().flatten().collect()
}

/// `f` of consecutive parts of `items`, one part per core, in order. Scoped threads rather than
/// polars' pool: a one-row file is too small to split further, and work done per part (gluing
/// one-row frames together) is done on every core rather than once at the end on one.
pub(super) fn parts_on_cores<T: Sync, R: Send>(items: &[T], f: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(items.len().max(1));
    if threads <= 1 {
        return vec![f(items)];
    }
    let chunk = items.len().div_ceil(threads).max(1);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items.chunks(chunk).map(|part| scope.spawn(move || f(part))).collect();
        // `f` turns reader panics into values (`catch_panic`); anything else is a bug to surface.
        handles.into_iter().map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    })
}
