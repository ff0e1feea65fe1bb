//! `gps report`'s index of parsed result rows, `<results dir>/.gps-report-index.parquet`: every
//! row file's columns as parsed, with the file's path (relative to the results folder), size,
//! modification time (ns) and inode.
//!
//! Opening and parsing 10,000 one-row Parquet files is most of a report over a big sweep, yet a
//! finished row only ever changes by being replaced. A report lists and stats the row files as
//! before, reuses the entries whose file still has the same path, size, mtime and inode, parses
//! only new or replaced files, drops entries whose file is gone, and rewrites the index (temp
//! file and rename) when anything changed. Only the report writes it: a task still only ever
//! creates its own row file, so concurrent tasks share nothing.
//!
//! The row files stay the truth. A missing, unreadable or foreign index (another format) is
//! rebuilt without a word, a damaged one with a warning; a results folder the report cannot write
//! to is reported from the rows parsed in memory. A file the index cannot hold (one that does not
//! parse whole) is left to the report's own per-file reader every time, so its reason is given
//! as before.

use super::reading::{catch_panic, on_cores, parts_on_cores};
use anyhow::{Context, Result, anyhow, bail};
use polars::prelude::*;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The index's file name in the results folder: hidden (a leading dot), so `row_files`, like
/// every other listing of row files, passes it by as it passes a row being written.
pub const FILE_NAME: &str = ".gps-report-index.parquet";
/// The Parquet key-value metadata entry holding `Meta` (JSON).
const META_KEY: &str = "gps-report-index";
/// Bumped whenever the layout changes: an index of another format is rebuilt without a word.
const FORMAT: u32 = 1;

/// Bookkeeping columns, one value per row (a file's rows are consecutive). A row file with a
/// column of this prefix is not indexed.
const PREFIX: &str = "__gps_index_";
const PATH: &str = "__gps_index_path";
const SIZE: &str = "__gps_index_size";
const MTIME: &str = "__gps_index_mtime_ns";
const INODE: &str = "__gps_index_inode";
const SCHEMA: &str = "__gps_index_schema";

/// A row file's columns in its order: each name, and the index column holding its values (None:
/// the file's column has no type, Null, which a report reads as it reads a missing column). A
/// name keeps its own column for its first type; a file with another type of it (a foreign or
/// hand-edited row) gets a column of its own, so the report can still say what the file holds.
type FileSchema = Vec<(String, Option<String>)>;

#[derive(serde::Serialize, serde::Deserialize)]
struct Meta {
    format: u32,
    schemas: Vec<FileSchema>,
}

/// What tells one version of a row file from another. gps replaces a row by renaming a new file
/// over it, so each rewrite has a new inode even when size and mtime (a coarse clock) match; only
/// an edit in place by another tool, of the same size and within one tick of that clock, would go
/// unseen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime_ns: i64,
    inode: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        let mtime_ns = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(-1, |d| d.as_nanos() as i64);
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Stamp { size: meta.len(), mtime_ns, inode }
    }
}

/// Where a listed row file's rows are in the frames `Index::frame` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub schema: usize,
    pub rows: Range<usize>,
}

/// What one refresh did (for tests and curiosity; never timing).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    /// Files whose entry was reused as it was.
    pub reused: usize,
    /// Files parsed whole and added to the index (new or changed since it was written).
    pub parsed: usize,
    /// Whether the index file was (re)written.
    pub written: bool,
}

/// The rows behind the entries.
enum Data {
    /// Nothing indexed.
    Empty,
    /// Unchanged on disk (at `path`): read column by column on demand, from the file as opened
    /// (a report replacing it meanwhile does not change what this one reads).
    OnDisk { path: PathBuf, file: std::fs::File, metadata: FileMetadataRef },
    /// Built by this refresh (written, or not writable).
    Full(DataFrame),
}

/// The index as refreshed against a listing of row files.
pub struct Index {
    /// Per listed row file, in the listing's order: its rows, or None for a file the index does
    /// not hold (the report reads it itself).
    entries: Vec<Option<Entry>>,
    schemas: Vec<FileSchema>,
    data: Data,
    stats: Stats,
}

impl Index {
    /// The index of `files` (the listing of `dir` by `row_files`): reused where it still holds,
    /// completed and rewritten where it does not. Never fails: whatever goes wrong with the index
    /// leaves files to the report's own reader.
    pub fn refresh(dir: &Path, files: &[PathBuf]) -> Index {
        let path = dir.join(FILE_NAME);
        let old = match load(&path) {
            Ok(old) => old,
            Err(e) => {
                eprintln!("warning: the report index {} is damaged ({e:#}); rebuilding it from the row files", path.display());
                None
            }
        };
        let relative: Vec<Option<String>> = files.iter().map(|f| f.strip_prefix(dir).ok().and_then(|r| r.to_str()).map(str::to_string)).collect();
        let fresh: Vec<Option<usize>> = match &old {
            Some(old) => {
                let at: HashMap<&str, usize> = old.entries.iter().enumerate().map(|(i, e)| (e.path.as_str(), i)).collect();
                let listed: Vec<usize> = (0..files.len()).collect();
                on_cores(&listed, |&f| {
                    let i = *at.get(relative[f].as_deref()?)?;
                    let stamp = Stamp::of(&std::fs::metadata(&files[f]).ok()?);
                    (old.entries[i].stamp == stamp).then_some(i)
                })
            }
            None => vec![None; files.len()],
        };
        let reused = fresh.iter().flatten().count();
        let to_parse: Vec<usize> = (0..files.len()).filter(|&i| fresh[i].is_none() && relative[i].is_some()).collect();
        let mut parsed: Vec<Piece> = parts_on_cores(&to_parse, |part| parse_part(files, part)).into_iter().flatten().collect();
        let added: usize = parsed.iter().map(|p| p.files.len()).sum();
        let dropped = old.as_ref().is_some_and(|old| old.entries.len() > reused);
        let old = match old {
            Some(old) if added == 0 && !dropped => {
                // Unchanged: the entries as they are, the rows read from disk column by column.
                let entries = fresh.iter().map(|i| i.map(|i| Entry { schema: old.entries[i].schema, rows: old.entries[i].rows.clone() })).collect();
                let stats = Stats { reused, parsed: 0, written: false };
                let data = Data::OnDisk { path, file: old.file, metadata: old.metadata };
                return Index { entries, schemas: old.meta.schemas, data, stats };
            }
            old => old,
        };
        let (mut reused, mut added) = (reused, added);
        let built = match rebuild(files, &relative, old, &fresh, &parsed) {
            Err(e) if reused > 0 => {
                // The entries looked right but their rows do not read back: parse those files too.
                eprintln!("warning: the report index {} is damaged ({e:#}); rebuilding it from the row files", path.display());
                let again: Vec<usize> = (0..files.len()).filter(|&i| fresh[i].is_some()).collect();
                parsed.extend(parts_on_cores(&again, |part| parse_part(files, part)).into_iter().flatten());
                (reused, added) = (0, parsed.iter().map(|p| p.files.len()).sum());
                rebuild(files, &relative, None, &vec![None; files.len()], &parsed)
            }
            built => built,
        };
        drop(parsed);
        match built {
            Ok((mut index, mut frame, meta)) => {
                index.stats.reused = reused;
                index.stats.parsed = added;
                index.stats.written = match write(&path, &mut frame, &meta) {
                    Ok(()) => true,
                    Err(e) => {
                        // A folder the report may only read (a shared results tree) is normal:
                        // the report goes on from the rows in memory.
                        if !is_read_only(&e) {
                            eprintln!("warning: cannot write the report index {} ({e:#}); the report reads every row file again next time", path.display());
                        }
                        false
                    }
                };
                index.data = Data::Full(frame);
                index
            }
            Err(e) => {
                eprintln!("warning: cannot index the row files under {} ({e:#}); reading them one by one", dir.display());
                Index { entries: vec![None; files.len()], schemas: Vec::new(), data: Data::Empty, stats: Stats::default() }
            }
        }
    }

    /// An index that holds nothing: the report reads every file itself (what a report did
    /// before there was an index; the tests' reference).
    #[cfg(test)]
    pub(super) fn none(files: usize) -> Index {
        Index { entries: vec![None; files], schemas: Vec::new(), data: Data::Empty, stats: Stats::default() }
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Where listed file `file`'s rows are; None when the report must read the file itself.
    pub fn entry(&self, file: usize) -> Option<&Entry> {
        self.entries.get(file)?.as_ref()
    }

    /// The column names of listed file `file`, in its order, when the index holds it.
    pub fn names(&self, file: usize) -> Option<Vec<String>> {
        let schema = self.schemas.get(self.entry(file)?.schema)?;
        Some(schema.iter().map(|(name, _)| name.clone()).collect())
    }

    /// The index column holding column `name` of the files of `schema`; None when those files do
    /// not have it (or it has no type there).
    pub fn stored(&self, schema: usize, name: &str) -> Option<&str> {
        self.schemas.get(schema)?.iter().find(|(n, _)| n == name)?.1.as_deref()
    }

    /// The index columns holding `names` in any indexed file, each under its index column name
    /// (`stored`), every indexed row (see `Entry::rows`). An index whose columns do not read
    /// (its entries did) is removed, for the next report to rebuild.
    pub fn frame(&self, names: &[String]) -> Result<DataFrame> {
        let used: BTreeSet<usize> = self.entries.iter().flatten().map(|e| e.schema).collect();
        let mut stored: Vec<String> = Vec::new();
        for name in names {
            for &s in &used {
                if let Some(column) = self.stored(s, name)
                    && !stored.iter().any(|c| c == column)
                {
                    stored.push(column.to_string());
                }
            }
        }
        match &self.data {
            Data::Empty => Ok(DataFrame::empty()),
            Data::Full(frame) => Ok(frame.select(stored)?),
            Data::OnDisk { .. } if stored.is_empty() => Ok(DataFrame::empty()),
            Data::OnDisk { path, file, metadata } => {
                let read = || -> Result<DataFrame> {
                    let mut reader = ParquetReader::new(file.try_clone()?);
                    reader.set_metadata(metadata.clone());
                    let reader = reader.with_columns(Some(stored));
                    Ok(catch_panic(|| reader.finish()).map_err(|panic| anyhow!("the Parquet reader crashed on it ({panic})"))??)
                };
                read().map_err(|e| {
                    let _ = std::fs::remove_file(path);
                    e.context(format!("the report index {} is damaged (removed: the next report rebuilds it)", path.display()))
                })
            }
        }
    }
}

/// One indexed row file as loaded: path relative to the results folder, stamp, rows.
struct Loaded {
    path: String,
    stamp: Stamp,
    schema: usize,
    rows: Range<usize>,
}

struct OldIndex {
    file: std::fs::File,
    metadata: FileMetadataRef,
    meta: Meta,
    /// In the index's row order.
    entries: Vec<Loaded>,
}

/// The index at `path` (its entries; the rows stay on disk): None when there is none, it cannot
/// be opened, or it is not of this format; an error when it is damaged.
fn load(path: &Path) -> Result<Option<OldIndex>> {
    let Ok(file) = std::fs::File::open(path) else { return Ok(None) };
    let crashed = |panic: String| anyhow!("the Parquet reader crashed on it ({panic})");
    let mut reader = ParquetReader::new(file.try_clone()?);
    let metadata: FileMetadataRef =
        catch_panic(|| reader.get_metadata().cloned()).map_err(crashed)?.map_err(anyhow::Error::from).context("not a readable Parquet file")?;
    let Some(text) = metadata.key_value_metadata.iter().flatten().find(|kv| kv.key == META_KEY).and_then(|kv| kv.value.clone()) else {
        return Ok(None);
    };
    let tree: serde_json::Value = serde_json::from_str(&text).context("its description is not JSON")?;
    if tree.get("format").and_then(|f| f.as_u64()) != Some(FORMAT as u64) {
        return Ok(None);
    }
    let meta: Meta = serde_json::from_value(tree).context("its description does not parse")?;
    let arrow = catch_panic(|| reader.schema()).map_err(crashed)??;
    for (name, stored) in meta.schemas.iter().flatten() {
        if let Some(stored) = stored
            && !arrow.contains(stored.as_str())
        {
            bail!("it lacks column `{stored}`, which its description names for `{name}`");
        }
    }
    let mut reader = ParquetReader::new(file.try_clone()?);
    reader.set_metadata(metadata.clone());
    let columns = [PATH, SIZE, MTIME, INODE, SCHEMA].map(String::from).to_vec();
    let book = catch_panic(|| reader.with_columns(Some(columns)).finish()).map_err(crashed)??;
    let (paths, sizes, mtimes, inodes, schemas) =
        (book.column(PATH)?.str()?, book.column(SIZE)?.u64()?, book.column(MTIME)?.i64()?, book.column(INODE)?.u64()?, book.column(SCHEMA)?.u32()?);
    let mut entries: Vec<Loaded> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for row in 0..book.height() {
        let (Some(path), Some(size), Some(mtime_ns), Some(inode), Some(schema)) =
            (paths.get(row), sizes.get(row), mtimes.get(row), inodes.get(row), schemas.get(row))
        else {
            bail!("row {row} lacks its file's path, size, time, inode or schema");
        };
        let (stamp, schema) = (Stamp { size, mtime_ns, inode }, schema as usize);
        if schema >= meta.schemas.len() {
            bail!("row {row} names schema {schema} of {}", meta.schemas.len());
        }
        match entries.last_mut() {
            Some(last) if last.path == path && last.stamp == stamp && last.schema == schema => last.rows.end = row + 1,
            _ => {
                if !seen.insert(path) {
                    bail!("the rows of {path} are not together");
                }
                entries.push(Loaded { path: path.to_string(), stamp, schema, rows: row..row + 1 });
            }
        }
    }
    Ok(Some(OldIndex { file, metadata, meta, entries }))
}

/// A whole row file, read as the index holds it, with the stamp of the file read (taken from the
/// open file: a file replaced after the listing is stored with its own stamp, so the next report
/// sees whether it changed again). None for a file that does not parse whole or has no row: the
/// report's own reader gives the reason every time.
fn parse(path: &Path) -> Option<(DataFrame, Stamp)> {
    let file = std::fs::File::open(path).ok()?;
    let stamp = Stamp::of(&file.metadata().ok()?);
    if stamp.size == 0 {
        return None;
    }
    // Files are parsed on every core already (`parts_on_cores`): no polars parallelism inside one.
    let frame = catch_panic(|| ParquetReader::new(file).read_parallel(ParallelStrategy::None).finish()).ok()?.ok()?;
    let ours = frame.get_column_names().iter().any(|n| n.starts_with(PREFIX));
    (frame.height() > 0 && !ours).then_some((frame, stamp))
}

/// Parsed row files glued together: consecutive files of one schema.
struct Piece {
    frame: DataFrame,
    /// Each file's place in the listing, stamp and rows, in the frame's order.
    files: Vec<(usize, Stamp, usize)>,
}

/// Parses the listed files `part` (positions in `files`), gluing consecutive files of one schema
/// into one frame: one piece per schema run rather than a frame per file (gluing 10,000 one-row
/// frames is a good part of the work, done here on every core).
fn parse_part(files: &[PathBuf], part: &[usize]) -> Vec<Piece> {
    let mut pieces: Vec<Piece> = Vec::new();
    for &i in part {
        let Some((frame, stamp)) = parse(&files[i]) else { continue };
        let entry = (i, stamp, frame.height());
        match pieces.last_mut() {
            Some(last) if last.frame.schema() == frame.schema() => {
                // Same schema: stacking cannot fail; if it ever did, the file is left to the
                // report's own reader.
                if last.frame.vstack_mut_owned(frame).is_ok() {
                    last.files.push(entry);
                }
            }
            _ => pieces.push(Piece { frame, files: vec![entry] }),
        }
    }
    for piece in &mut pieces {
        piece.frame.rechunk_mut();
    }
    pieces
}

/// Index columns: one per (name, type), the type's first-comer named as the column itself.
#[derive(Default)]
struct Columns {
    /// (index column, type), in order.
    list: Vec<(String, DataType)>,
    by_name: HashMap<String, Vec<usize>>,
    taken: HashSet<String>,
}

impl Columns {
    /// The index column for `name` holding `dtype`; `preferred`: the name an earlier index gave it.
    fn of(&mut self, name: &str, dtype: &DataType, preferred: Option<&str>) -> String {
        let same = self.by_name.get(name).and_then(|at| at.iter().find(|&&i| self.list[i].1 == *dtype));
        if let Some(&i) = same {
            return self.list[i].0.clone();
        }
        let stored = match preferred.filter(|p| !self.taken.contains(*p)) {
            Some(p) => p.to_string(),
            None => (0..).map(|n| if n == 0 { name.to_string() } else { format!("{name}\u{1}{n}") }).find(|c| !self.taken.contains(c)).unwrap_or_default(),
        };
        self.taken.insert(stored.clone());
        self.by_name.entry(name.to_string()).or_default().push(self.list.len());
        self.list.push((stored.clone(), dtype.clone()));
        stored
    }
}

/// Schemas, each once.
#[derive(Default)]
struct Schemas {
    list: Vec<FileSchema>,
    ids: HashMap<FileSchema, usize>,
}

impl Schemas {
    fn id(&mut self, schema: FileSchema) -> usize {
        if let Some(&id) = self.ids.get(&schema) {
            return id;
        }
        self.list.push(schema.clone());
        self.ids.insert(schema, self.list.len() - 1);
        self.list.len() - 1
    }
}

/// The new index: the reused rows of `old` and the `parsed` files, in the listing's order, with
/// their bookkeeping columns; and its description.
fn rebuild(
    files: &[PathBuf],
    relative: &[Option<String>],
    old: Option<OldIndex>,
    fresh: &[Option<usize>],
    parsed: &[Piece],
) -> Result<(Index, DataFrame, Meta)> {
    let mut columns = Columns::default();
    let mut schemas = Schemas::default();
    // The reused rows, read whole (a damaged index reads as none: its files are parsed again).
    let reused: Option<(OldIndex, DataFrame)> = match old {
        Some(old) if fresh.iter().any(Option::is_some) => {
            let mut reader = ParquetReader::new(old.file.try_clone()?);
            reader.set_metadata(old.metadata.clone());
            match catch_panic(|| reader.finish()) {
                Ok(Ok(frame)) => Some((old, frame)),
                Ok(Err(e)) => return Err(anyhow::Error::from(e).context("the report index does not read whole")),
                Err(panic) => bail!("the Parquet reader crashed on the report index ({panic})"),
            }
        }
        _ => None,
    };
    let mut old_schema_ids: HashMap<usize, usize> = HashMap::new();
    if let Some((old, frame)) = &reused {
        for &i in fresh.iter().flatten() {
            let s = old.entries[i].schema;
            if old_schema_ids.contains_key(&s) {
                continue;
            }
            let mut schema = FileSchema::new();
            for (name, stored) in &old.meta.schemas[s] {
                let stored = match stored {
                    Some(stored) => {
                        let now = columns.of(name, frame.column(stored)?.dtype(), Some(stored));
                        if now != *stored {
                            bail!("column `{stored}` of the report index holds two columns of the rows");
                        }
                        Some(now)
                    }
                    None => None,
                };
                schema.push((name.clone(), stored));
            }
            old_schema_ids.insert(s, schemas.id(schema));
        }
    }
    // Each piece's schema.
    let piece_schemas: Vec<usize> = parsed
        .iter()
        .map(|piece| {
            let schema: FileSchema =
                piece.frame.columns().iter().map(|c| (c.name().to_string(), (!c.dtype().is_null()).then(|| columns.of(c.name(), c.dtype(), None)))).collect();
            schemas.id(schema)
        })
        .collect();
    // Every piece under the index columns, in the index's column order, then stacked.
    let align = |frame: &DataFrame, schema: Option<&FileSchema>| -> Result<DataFrame> {
        let height = frame.height();
        let mut out = Vec::with_capacity(columns.list.len());
        for (stored, dtype) in &columns.list {
            let source = match schema {
                Some(schema) => schema.iter().find(|(_, s)| s.as_deref() == Some(stored.as_str())).map(|(name, _)| name.as_str()),
                None => frame.get_column_names().iter().any(|n| n.as_str() == stored).then_some(stored.as_str()),
            };
            out.push(match source {
                Some(name) => frame.column(name)?.clone().with_name(stored.as_str().into()),
                None => Column::full_null(stored.as_str().into(), height, dtype),
            });
        }
        Ok(DataFrame::new(height, out)?)
    };
    let mut pieces: Vec<DataFrame> = Vec::new();
    // Row of each listed file's first row in `pieces` stacked, and its row count.
    let mut placed: Vec<Option<(usize, usize)>> = vec![None; files.len()];
    let mut stacked_rows = 0;
    if let Some((old, frame)) = &reused {
        let kept: Vec<(usize, usize)> = fresh.iter().enumerate().filter_map(|(f, i)| i.map(|i| (f, i))).collect();
        let rows: Vec<IdxSize> = kept.iter().flat_map(|&(_, i)| old.entries[i].rows.clone()).map(|r| r as IdxSize).collect();
        let taken = frame.take(&IdxCa::from_vec("rows".into(), rows))?;
        for &(f, i) in &kept {
            let n = old.entries[i].rows.len();
            placed[f] = Some((stacked_rows, n));
            stacked_rows += n;
        }
        pieces.push(align(&taken, None)?);
    }
    // Parsed files: their stamp and schema.
    let mut new_files: Vec<Option<(Stamp, usize)>> = vec![None; files.len()];
    for (piece, &id) in parsed.iter().zip(&piece_schemas) {
        let frame = align(&piece.frame, Some(&schemas.list[id]))?;
        for &(f, stamp, n) in &piece.files {
            placed[f] = Some((stacked_rows, n));
            new_files[f] = Some((stamp, id));
            stacked_rows += n;
        }
        pieces.push(frame);
    }
    let mut pieces = pieces.into_iter();
    let mut data = match pieces.next() {
        Some(first) => first,
        None => DataFrame::new(0, columns.list.iter().map(|(c, t)| Column::full_null(c.as_str().into(), 0, t)).collect())?,
    };
    for piece in pieces {
        data.vstack_mut_owned(piece)?;
    }
    data.rechunk_mut();
    // Into the listing's order, with each row's file, stamp and schema.
    let mut rows: Vec<IdxSize> = Vec::with_capacity(stacked_rows);
    let (mut path, mut size, mut mtime, mut inode, mut schema) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut entries: Vec<Option<Entry>> = vec![None; files.len()];
    for (f, place) in placed.iter().enumerate() {
        let Some((first, n)) = *place else { continue };
        let (stamp, id) = match (new_files[f], fresh[f], &reused) {
            (Some((stamp, id)), _, _) => (Some(stamp), Some(id)),
            (None, Some(i), Some((old, _))) => (Some(old.entries[i].stamp), old_schema_ids.get(&old.entries[i].schema).copied()),
            _ => (None, None),
        };
        let (Some(stamp), Some(id)) = (stamp, id) else { bail!("{} was placed in the index without its stamp or schema", files[f].display()) };
        entries[f] = Some(Entry { schema: id, rows: rows.len()..rows.len() + n });
        for r in first..first + n {
            rows.push(r as IdxSize);
            path.push(relative[f].clone().unwrap_or_default());
            size.push(stamp.size);
            mtime.push(stamp.mtime_ns);
            inode.push(stamp.inode);
            schema.push(id as u32);
        }
    }
    let in_order = rows.iter().enumerate().all(|(i, &r)| i as IdxSize == r);
    if !in_order {
        data = data.take(&IdxCa::from_vec("rows".into(), rows))?;
    }
    let height = data.height();
    let mut book = DataFrame::new(
        height,
        vec![
            Column::new(PATH.into(), path),
            Column::new(SIZE.into(), size),
            Column::new(MTIME.into(), mtime),
            Column::new(INODE.into(), inode),
            Column::new(SCHEMA.into(), schema),
        ],
    )?;
    book.hstack_mut(data.columns())?;
    book.rechunk_mut();
    let meta = Meta { format: FORMAT, schemas: schemas.list.clone() };
    let index = Index { entries, schemas: schemas.list, data: Data::Empty, stats: Stats::default() };
    Ok((index, book, meta))
}

/// Writes the index through a temp file in the same folder and a rename: a report reading it
/// meanwhile sees the old index or the new, never half of either.
fn write(path: &Path, frame: &mut DataFrame, meta: &Meta) -> Result<()> {
    let text = serde_json::to_string(meta)?;
    crate::atomic_file::write_file(path, |file| {
        // Read back on every report, whole columns at a time: no statistics to prune with, and
        // no compression to undo (rows are mostly distinct floats; the page cache holds it).
        ParquetWriter::new(file)
            .with_statistics(StatisticsOptions::empty())
            .with_compression(ParquetCompression::Uncompressed)
            .with_key_value_metadata(Some(KeyValueMetadata::from_static(vec![(META_KEY.to_string(), text)])))
            .finish(frame)?;
        Ok(())
    })
}

/// Whether `error` says the folder may not be written (permissions, a read-only file system).
fn is_read_only(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| matches!(e.kind(), std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Method, PriorSpec, RunSpec};
    use crate::eval::health::HealthHistory;
    use crate::results::row::{self, ResultRow};
    use crate::results::table::{Rows, TableQuery, row_files, tabulate};
    use crate::results::{html, render};
    use crate::train::RunOutcome;

    fn query() -> TableQuery {
        TableQuery { rows: vec!["method".into()], cols: vec!["prior".into()], metric: "probe_top1_best".into(), ..Default::default() }
    }

    /// What the HTML report reads: every kind of column, lists included.
    fn columns() -> Vec<String> {
        html::columns(&query())
    }

    fn outcome(acc: f64) -> RunOutcome {
        RunOutcome {
            probe_top1_best: acc,
            probe_top1_last: acc,
            knn_top1: acc,
            epoch_losses: vec![2.0, 1.0],
            epoch_probe_top1: vec![acc / 2.0, acc],
            health: HealthHistory { epoch_rankme: vec![10.0, 20.0 * acc], epoch_alignment: vec![0.5, 0.4], epoch_uniformity: vec![-1.0, -2.0] },
            epochs: 2,
            device: "cpu".into(),
            ..Default::default()
        }
    }

    fn spec(out: &Path, method: Method, prior: PriorSpec, seed: u64) -> RunSpec {
        RunSpec { method, prior, seed, epochs: 2, output_dir: out.to_path_buf(), ..RunSpec::default() }
    }

    fn write_run(out: &Path, method: Method, prior: PriorSpec, seed: u64, acc: f64) -> PathBuf {
        row::write_row(out, &ResultRow::new("idx", &spec(out, method, prior, seed), &outcome(acc))).unwrap()
    }

    /// Two methods × two priors × three seeds.
    fn sweep(out: &Path) {
        for (m, method) in [Method::Simclr, Method::Byol].into_iter().enumerate() {
            for (p, prior) in [PriorSpec::None, PriorSpec::Pixels].into_iter().enumerate() {
                for seed in 0..3 {
                    write_run(out, method, prior.clone(), seed, 0.5 + 0.1 * m as f64 + 0.05 * p as f64 + 0.01 * seed as f64);
                }
            }
        }
    }

    /// The rows as a report reads them now (through the index).
    fn report(dir: &Path) -> Rows {
        Rows::read(dir, &columns(), &["probe_top1_best".to_string()]).unwrap()
    }

    /// The rows read from every file, no index involved (what a report did before it).
    fn without_index(dir: &Path) -> Rows {
        let (files, failed) = row_files(dir).unwrap();
        Rows::read_through(&Index::none(files.len()), dir, &files, failed, &columns(), &["probe_top1_best".to_string()]).unwrap()
    }

    /// Everything a report shows from `rows`: the table as Markdown and CSV, the HTML page (less
    /// the moment it was written), and what was skipped, repeated or failed.
    fn shown(rows: &Rows) -> String {
        let table = tabulate(rows, &query()).unwrap();
        let page = html::document(&html::Report { rows, table: &table, comparison: None, command: "gps report".into() }).unwrap();
        let page = match (page.find(", written "), page.rfind("</p>\n</section>")) {
            (Some(a), Some(b)) if a < b => format!("{}{}", &page[..a], &page[b..]),
            _ => page,
        };
        format!(
            "{}\n{}\n{page}\n{:?}\n{:?}\n{}\n{:?}\n{:?}",
            render::markdown(&table),
            render::csv(&table),
            rows.skipped,
            rows.duplicates,
            rows.failed,
            rows.fields,
            rows.configs
        )
    }

    /// The report through the index shows what a read of every file shows, to the row.
    fn same_as_without_index(dir: &Path) -> Stats {
        let (with, without) = (report(dir), without_index(dir));
        assert_eq!(with.frame.height(), without.frame.height());
        for (a, b) in with.frame.columns().iter().zip(without.frame.columns()) {
            assert_eq!(a.name(), b.name());
            assert_eq!(a.dtype(), b.dtype(), "{}", a.name());
            assert!(a.equals_missing(b), "{}:\n{a:?}\n{b:?}", a.name());
        }
        assert_eq!(shown(&with), shown(&without));
        with.index
    }

    #[test]
    fn the_first_report_writes_the_index_and_the_next_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        sweep(out);
        assert!(!out.join(FILE_NAME).exists());
        let first = same_as_without_index(out);
        assert_eq!(first, Stats { reused: 0, parsed: 12, written: true });
        assert!(out.join(FILE_NAME).is_file());
        assert_eq!(row_files(out).unwrap().0.len(), 12, "the index is no row");
        let second = same_as_without_index(out);
        assert_eq!(second, Stats { reused: 12, parsed: 0, written: false });
        // A folder of sweeps keeps its own index, over both sweeps' rows.
        let root = tempfile::tempdir().unwrap();
        for name in ["a", "b"] {
            sweep(&root.path().join(name));
        }
        assert_eq!(same_as_without_index(root.path()), Stats { reused: 0, parsed: 24, written: true });
        assert_eq!(same_as_without_index(root.path()), Stats { reused: 24, parsed: 0, written: false });
        assert!(root.path().join(FILE_NAME).is_file());
    }

    #[test]
    fn added_changed_and_removed_rows_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        sweep(out);
        same_as_without_index(out);
        let added = write_run(out, Method::Simclr, PriorSpec::None, 3, 0.9);
        assert_eq!(same_as_without_index(out), Stats { reused: 12, parsed: 1, written: true });
        // Rewritten with another metric (a rename over it, as every gps write is).
        write_run(out, Method::Simclr, PriorSpec::None, 3, 0.1);
        assert_eq!(same_as_without_index(out), Stats { reused: 12, parsed: 1, written: true });
        let cell = |rows: &Rows| tabulate(rows, &query()).unwrap().cells[1][0].clone().unwrap();
        assert_eq!(cell(&report(out)).n, 4);
        assert!((cell(&report(out)).mean - (0.5 + 0.51 + 0.52 + 0.1) / 4.0).abs() < 1e-12, "the new value, not the indexed one");
        std::fs::remove_file(&added).unwrap();
        assert_eq!(same_as_without_index(out), Stats { reused: 12, parsed: 0, written: true });
        assert_eq!(same_as_without_index(out), Stats { reused: 12, parsed: 0, written: false });
    }

    #[test]
    fn odd_rows_read_as_without_the_index() {
        use crate::config::Method::Simclr;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        sweep(out);
        same_as_without_index(out);
        let runs = row::runs_dir(out);
        // A row from before some columns existed, and one with a column of another type: each
        // its own schema in the index.
        let old = spec(out, Simclr, PriorSpec::None, 7);
        let mut frame = ResultRow::new("idx", &old, &outcome(0.6)).to_frame().unwrap();
        for c in ["rankme", "epoch_rankme", "command", "numerics"] {
            frame = frame.drop(c).unwrap();
        }
        ParquetWriter::new(std::fs::File::create(row::row_path(out, &old.run_id())).unwrap()).finish(&mut frame).unwrap();
        let mut odd = ResultRow::new("idx", &spec(out, Simclr, PriorSpec::None, 8), &outcome(0.6)).to_frame().unwrap();
        odd.with_column(Column::new("status".into(), [1i64])).unwrap();
        ParquetWriter::new(std::fs::File::create(runs.join("b00000000001.parquet")).unwrap()).finish(&mut odd).unwrap();
        // Files that do not parse: never indexed, read (and named) by the report every time.
        std::fs::write(runs.join("b00000000002.parquet"), b"not parquet").unwrap();
        std::fs::write(runs.join("000000000000.parquet"), b"").unwrap();
        let first = same_as_without_index(out);
        assert_eq!(first, Stats { reused: 12, parsed: 2, written: true });
        let rows = report(out);
        let reasons: Vec<(String, &str)> =
            rows.skipped.iter().map(|s| (s.path.file_name().unwrap().to_string_lossy().into_owned(), s.reason.as_str())).collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons.iter().any(|(f, r)| f == "b00000000001.parquet" && r.contains("column `status` holds i64, expected text")), "{reasons:?}");
        assert!(reasons.iter().any(|(f, r)| f == "000000000000.parquet" && r.contains("empty")), "{reasons:?}");
        assert!(reasons.iter().any(|(f, r)| f == "b00000000002.parquet" && r.contains("not a readable Parquet row")), "{reasons:?}");
        assert_eq!(same_as_without_index(out), Stats { reused: 14, parsed: 0, written: false });
        // The old row's missing columns read as null through the index too.
        let rankme = report(out).frame.column("rankme").unwrap().null_count();
        assert_eq!(rankme, 1);
    }

    #[test]
    fn a_damaged_or_foreign_index_is_rebuilt_from_the_rows() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        sweep(out);
        same_as_without_index(out);
        let index = out.join(FILE_NAME);
        let bytes = std::fs::read(&index).unwrap();
        let rows = row_files(out).unwrap().0;
        let damaged: [(&str, Vec<u8>); 4] = [
            ("garbage", b"not an index".to_vec()),
            ("cut short", bytes[..bytes.len() / 2].to_vec()),
            ("empty", Vec::new()),
            ("a row file, not an index", std::fs::read(&rows[0]).unwrap()),
        ];
        for (what, content) in damaged {
            std::fs::write(&index, content).unwrap();
            assert_eq!(same_as_without_index(out), Stats { reused: 0, parsed: 12, written: true }, "{what}");
            assert_eq!(same_as_without_index(out), Stats { reused: 12, parsed: 0, written: false }, "{what}");
        }
        // An index whose description names a column it does not have.
        let mut frame = ParquetReader::new(std::fs::File::open(&index).unwrap()).finish().unwrap();
        let mut lying = frame.drop("probe_top1_best").unwrap();
        let meta = load(&index).unwrap().unwrap().meta;
        write(&index, &mut lying, &meta).unwrap();
        assert_eq!(same_as_without_index(out), Stats { reused: 0, parsed: 12, written: true });
        // An index of fewer files (an older one) is completed.
        frame = frame.slice(0, 6);
        write(&index, &mut frame, &meta).unwrap();
        assert_eq!(same_as_without_index(out), Stats { reused: 6, parsed: 6, written: true });
        // A column that does not read behind entries that do: the report reads the files
        // themselves and removes the index, which the next report rebuilds.
        let metadata = ParquetReader::new(std::fs::File::open(&index).unwrap()).get_metadata().unwrap().clone();
        let chunk = metadata.row_groups[0].columns_under_root_iter("probe_top1_best").unwrap().next().unwrap().byte_range();
        let mut bytes = std::fs::read(&index).unwrap();
        bytes[chunk.start as usize..chunk.start as usize + 16].fill(0xff);
        std::fs::write(&index, bytes).unwrap();
        assert_eq!(same_as_without_index(out), Stats { reused: 12, parsed: 0, written: false });
        assert!(!index.exists());
        assert_eq!(same_as_without_index(out), Stats { reused: 0, parsed: 12, written: true });
    }

    #[test]
    fn a_folder_the_report_cannot_write_to_still_reports() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        sweep(out);
        // Something in the index's place that no write can replace (root may write anywhere).
        std::fs::create_dir(out.join(FILE_NAME)).unwrap();
        assert_eq!(same_as_without_index(out), Stats { reused: 0, parsed: 12, written: false });
        std::fs::remove_dir(out.join(FILE_NAME)).unwrap();
        // A read-only folder: where the permissions hold (not for root), nothing is written.
        std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o555)).unwrap();
        let enforced = std::fs::File::create(out.join("probe")).is_err();
        let _ = std::fs::remove_file(out.join("probe"));
        let stats = same_as_without_index(out);
        std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o755)).unwrap();
        if enforced {
            assert_eq!(stats, Stats { reused: 0, parsed: 12, written: false });
            assert!(!out.join(FILE_NAME).exists());
        }
        assert_eq!(row_files(out).unwrap().0.len(), 12, "no temp file left among the rows");
    }
}
