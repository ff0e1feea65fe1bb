//! Reading a PyTorch checkpoint as `torch.save` writes it (PyTorch ≥ 1.6: a zip holding
//! `<name>/data.pkl`, a pickle of the state dict, and `<name>/data/<key>`, one raw little-endian
//! storage per key), without Python: torchvision's weight files as torch hub caches them
//! (`~/.cache/torch/hub/checkpoints/resnet50-11ad3fa6.pth`) load as they are.
//!
//! The pickle is run by a small machine that knows the opcodes `torch.save` emits (protocol 2)
//! and the two globals a state dict needs: `collections.OrderedDict` and
//! `torch._utils._rebuild_tensor_v2` (with `_rebuild_parameter` around it for `nn.Parameter`s).
//! Anything else (an arbitrary object, a model pickled whole) is refused with the reason, never
//! guessed at. Files in the legacy format (before PyTorch 1.6) go through
//! `scripts/convert_legacy_pth.py` first.

use anyhow::{Context, Result, anyhow, bail};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use tch::{Kind, Tensor};

/// One tensor of the file: its dtype, shape and values (contiguous, as stored).
#[derive(Debug)]
pub struct NamedTensor {
    pub name: String,
    pub tensor: Tensor,
}

/// The tensors of a `torch.save`d state dict, in the file's order.
pub fn read_state_dict(path: &Path) -> Result<Vec<NamedTensor>> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| {
        let legacy = std::fs::read(path).ok().is_some_and(|b| b.len() > 2 && b[0] == 0x80);
        if legacy {
            anyhow!(
                "{} is a PyTorch file in the legacy format (before PyTorch 1.6); convert it once with `python3 scripts/convert_legacy_pth.py {} out.safetensors` and point gps at out.safetensors",
                path.display(),
                path.display()
            )
        } else {
            anyhow!("{} is not a PyTorch checkpoint (torch.save writes a zip archive): {e}", path.display())
        }
    })?;
    let pickle_name = (0..zip.len())
        .filter_map(|i| zip.by_index(i).ok().map(|f| f.name().to_string()))
        .find(|n| n.ends_with("/data.pkl") || n == "data.pkl")
        .with_context(|| format!("{} holds no data.pkl: not a torch.save checkpoint (damaged or truncated?)", path.display()))?;
    let prefix = pickle_name.strip_suffix("data.pkl").unwrap_or("").to_string();
    let mut pickle = Vec::new();
    zip.by_name(&pickle_name)?.read_to_end(&mut pickle).with_context(|| format!("reading {pickle_name} in {}", path.display()))?;
    let root = Machine::default().run(&pickle).with_context(|| format!("{}: cannot read its state dict", path.display()))?;
    let entries = match root {
        Value::Dict(entries) => entries,
        other => bail!("{} holds a {} where a state dict (a mapping of names to tensors) belongs", path.display(), other.kind()),
    };
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let mut out = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let Value::Str(name) = key else { bail!("{}: a state dict key is a {}, not a name", path.display(), key.kind()) };
        let Value::Tensor(t) = value else {
            // Non-tensor entries (e.g. `_metadata` is an attribute, not an item) are not expected.
            bail!("{}: `{name}` is a {}, not a tensor", path.display(), value.kind());
        };
        if !storages.contains_key(&t.storage_key) {
            let entry = format!("{prefix}data/{}", t.storage_key);
            let mut bytes = Vec::new();
            zip.by_name(&entry)
                .with_context(|| format!("{}: storage {entry} of `{name}` is missing (truncated file?)", path.display()))?
                .read_to_end(&mut bytes)
                .with_context(|| format!("{}: reading storage {entry}", path.display()))?;
            storages.insert(t.storage_key.clone(), bytes);
        }
        let tensor = t.build(&storages[&t.storage_key]).with_context(|| format!("{}: tensor `{name}`", path.display()))?;
        out.push(NamedTensor { name, tensor });
    }
    Ok(out)
}

/// A tensor as the pickle describes it, before its storage is read.
#[derive(Debug, Clone, PartialEq)]
struct TensorRef {
    storage_key: String,
    kind: Kind,
    offset: i64,
    size: Vec<i64>,
    stride: Vec<i64>,
}

impl TensorRef {
    fn build(&self, storage: &[u8]) -> Result<Tensor> {
        let elem = self.kind.elt_size_in_bytes() as i64;
        let numel: i64 = self.size.iter().product();
        if numel == 0 {
            return Ok(Tensor::zeros(self.size.as_slice(), (self.kind, tch::Device::Cpu)));
        }
        // The highest element the view reaches must lie inside the storage.
        let last = self.offset + self.size.iter().zip(&self.stride).map(|(s, st)| (s - 1) * st).sum::<i64>();
        if self.offset < 0 || self.stride.iter().any(|&s| s < 0) || (last + 1) * elem > storage.len() as i64 {
            bail!("its view (offset {}, size {:?}, stride {:?}) reaches past its storage of {} bytes", self.offset, self.size, self.stride, storage.len());
        }
        let flat = Tensor::f_from_data_size(storage, &[storage.len() as i64 / elem], self.kind)?;
        Ok(flat.as_strided(self.size.as_slice(), self.stride.as_slice(), self.offset).contiguous())
    }
}

/// The values the machine builds.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// Insertion-ordered (a state dict keeps its order).
    Dict(Vec<(Value, Value)>),
    /// A global the machine knows (`module.name`).
    Global(String),
    /// A storage named by a persistent id: (storage type, key).
    Storage(Kind, String),
    Tensor(TensorRef),
    Mark,
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "class or function",
            Value::Storage(..) => "storage",
            Value::Tensor(_) => "tensor",
            Value::Mark => "mark",
        }
    }

    fn int(&self) -> Result<i64> {
        match self {
            Value::Int(i) => Ok(*i),
            Value::Bool(b) => Ok(*b as i64),
            other => bail!("expected an integer, found a {}", other.kind()),
        }
    }

    fn ints(&self) -> Result<Vec<i64>> {
        match self {
            Value::Tuple(v) | Value::List(v) => v.iter().map(Value::int).collect(),
            other => bail!("expected a tuple of integers, found a {}", other.kind()),
        }
    }
}

/// The globals a state dict may name, and nothing else.
const KNOWN_GLOBALS: [&str; 4] = ["collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter", "builtins.set"];

fn storage_kind(name: &str) -> Option<Kind> {
    Some(match name {
        "FloatStorage" => Kind::Float,
        "DoubleStorage" => Kind::Double,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        "ShortStorage" => Kind::Int16,
        "CharStorage" => Kind::Int8,
        "ByteStorage" => Kind::Uint8,
        "BoolStorage" => Kind::Bool,
        _ => return None,
    })
}

#[derive(Default)]
struct Machine {
    stack: Vec<Value>,
    memo: HashMap<u32, Value>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(|| anyhow!("the pickle ends early (truncated file?)"))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into()?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into()?))
    }
    fn line(&mut self) -> Result<String> {
        let rest = &self.bytes[self.at..];
        let end = rest.iter().position(|&b| b == b'\n').ok_or_else(|| anyhow!("the pickle ends inside a GLOBAL"))?;
        let s = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.at += end + 1;
        Ok(s)
    }
    fn text(&mut self, n: usize) -> Result<String> {
        Ok(String::from_utf8(self.take(n)?.to_vec())?)
    }
}

impl Machine {
    fn pop(&mut self) -> Result<Value> {
        self.stack.pop().ok_or_else(|| anyhow!("the pickle pops an empty stack"))
    }

    /// The values above the topmost mark (the mark removed).
    fn pop_to_mark(&mut self) -> Result<Vec<Value>> {
        let at = self.stack.iter().rposition(|v| *v == Value::Mark).ok_or_else(|| anyhow!("the pickle has no MARK where it needs one"))?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items)
    }

    fn top_mut(&mut self) -> Result<&mut Value> {
        self.stack.last_mut().ok_or_else(|| anyhow!("the pickle works on an empty stack"))
    }

    fn run(mut self, bytes: &[u8]) -> Result<Value> {
        let mut r = Reader { bytes, at: 0 };
        loop {
            let op = r.u8()?;
            match op {
                0x80 => {
                    r.u8()?; // PROTO
                }
                b'.' => return self.pop(), // STOP
                b'c' => {
                    let module = r.line()?;
                    let name = r.line()?;
                    let global = format!("{module}.{name}");
                    let known = KNOWN_GLOBALS.contains(&global.as_str()) || (module == "torch" && storage_kind(&name).is_some());
                    if !known {
                        bail!("it refers to `{global}`, which a state dict of tensors does not need; refusing to load it");
                    }
                    self.stack.push(Value::Global(global));
                }
                b'(' => self.stack.push(Value::Mark),
                b')' => self.stack.push(Value::Tuple(Vec::new())),
                b']' => self.stack.push(Value::List(Vec::new())),
                b'}' => self.stack.push(Value::Dict(Vec::new())),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'K' => {
                    let v = r.u8()?;
                    self.stack.push(Value::Int(v as i64));
                }
                b'M' => {
                    let v = r.u16()?;
                    self.stack.push(Value::Int(v as i64));
                }
                b'J' => {
                    let v = r.u32()? as i32;
                    self.stack.push(Value::Int(v as i64));
                }
                0x8a => {
                    // LONG1: little-endian two's complement of n bytes
                    let n = r.u8()? as usize;
                    let b = r.take(n)?;
                    if n > 8 {
                        bail!("an integer of {n} bytes is out of range");
                    }
                    let mut v: i64 = 0;
                    for (i, &byte) in b.iter().enumerate() {
                        v |= (byte as i64) << (8 * i);
                    }
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.stack.push(Value::Int(v));
                }
                b'G' => {
                    let v = f64::from_be_bytes(r.take(8)?.try_into()?);
                    self.stack.push(Value::Float(v));
                }
                b'X' => {
                    let n = r.u32()? as usize;
                    let s = r.text(n)?;
                    self.stack.push(Value::Str(s));
                }
                0x8c => {
                    let n = r.u8()? as usize;
                    let s = r.text(n)?;
                    self.stack.push(Value::Str(s));
                }
                b'q' => {
                    let k = r.u8()? as u32;
                    let v = self.stack.last().cloned().ok_or_else(|| anyhow!("BINPUT on an empty stack"))?;
                    self.memo.insert(k, v);
                }
                b'r' => {
                    let k = r.u32()?;
                    let v = self.stack.last().cloned().ok_or_else(|| anyhow!("LONG_BINPUT on an empty stack"))?;
                    self.memo.insert(k, v);
                }
                0x94 => {
                    let k = self.memo.len() as u32;
                    let v = self.stack.last().cloned().ok_or_else(|| anyhow!("MEMOIZE on an empty stack"))?;
                    self.memo.insert(k, v);
                }
                b'h' => {
                    let k = r.u8()? as u32;
                    let v = self.memo.get(&k).cloned().ok_or_else(|| anyhow!("BINGET of an unknown memo {k}"))?;
                    self.stack.push(v);
                }
                b'j' => {
                    let k = r.u32()?;
                    let v = self.memo.get(&k).cloned().ok_or_else(|| anyhow!("LONG_BINGET of an unknown memo {k}"))?;
                    self.stack.push(v);
                }
                b't' => {
                    let items = self.pop_to_mark()?;
                    self.stack.push(Value::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        bail!("TUPLE{n} on a stack of {}", self.stack.len());
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(items));
                }
                b'a' => {
                    let v = self.pop()?;
                    match self.top_mut()? {
                        Value::List(l) => l.push(v),
                        other => bail!("APPEND to a {}", other.kind()),
                    }
                }
                b'e' => {
                    let items = self.pop_to_mark()?;
                    match self.top_mut()? {
                        Value::List(l) => l.extend(items),
                        other => bail!("APPENDS to a {}", other.kind()),
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    match self.top_mut()? {
                        Value::Dict(d) => d.push((k, v)),
                        other => bail!("SETITEM on a {}", other.kind()),
                    }
                }
                b'u' => {
                    let items = self.pop_to_mark()?;
                    if items.len() % 2 != 0 {
                        bail!("SETITEMS with an odd number of values");
                    }
                    let mut pairs = Vec::with_capacity(items.len() / 2);
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    match self.top_mut()? {
                        Value::Dict(d) => d.extend(pairs),
                        other => bail!("SETITEMS on a {}", other.kind()),
                    }
                }
                b'Q' => {
                    // BINPERSID: ('storage', <storage type>, key, location, numel)
                    let pid = self.pop()?;
                    let Value::Tuple(parts) = pid else { bail!("a persistent id that is a {}, not a tuple", pid.kind()) };
                    match parts.as_slice() {
                        [Value::Str(tag), Value::Global(storage), Value::Str(key), ..] if tag == "storage" => {
                            let name = storage.rsplit('.').next().unwrap_or("");
                            let kind = storage_kind(name).ok_or_else(|| anyhow!("storage type `{storage}` is not supported"))?;
                            self.stack.push(Value::Storage(kind, key.clone()));
                        }
                        _ => bail!("a persistent id that is not a tensor storage"),
                    }
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let Value::Tuple(args) = args else { bail!("REDUCE with arguments that are a {}", args.kind()) };
                    let result = match callable {
                        Value::Global(g) if g == "collections.OrderedDict" => Value::Dict(Vec::new()),
                        Value::Global(g) if g == "builtins.set" => Value::List(Vec::new()),
                        Value::Global(g) if g == "torch._utils._rebuild_tensor_v2" => {
                            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                            match args.as_slice() {
                                [Value::Storage(kind, key), offset, size, stride, ..] => Value::Tensor(TensorRef {
                                    storage_key: key.clone(),
                                    kind: *kind,
                                    offset: offset.int()?,
                                    size: size.ints()?,
                                    stride: stride.ints()?,
                                }),
                                _ => bail!("_rebuild_tensor_v2 with unexpected arguments"),
                            }
                        }
                        Value::Global(g) if g == "torch._utils._rebuild_parameter" => match args.into_iter().next() {
                            Some(t @ Value::Tensor(_)) => t,
                            _ => bail!("_rebuild_parameter without a tensor"),
                        },
                        other => bail!("REDUCE of a {}", other.kind()),
                    };
                    self.stack.push(result);
                }
                b'b' => {
                    // BUILD: state for the object below; a state dict's `_metadata` attribute is
                    // not a tensor and not needed.
                    self.pop()?;
                }
                other => bail!("pickle opcode 0x{other:02x} is not one torch.save writes for a state dict"),
            }
        }
    }
}
