#!/usr/bin/env bash
# Installs libtorch 2.11.0 (the PyPI torch wheel, the same version as the GPU machines'
# /opt/torch/.venv; on PyPI it is the cu130 build) into the git-ignored .torch/ folder, with
# `pip install --no-deps --target`, so that torch/ and nvidia/ sit side by side and the wheel's
# DT_RPATH ($ORIGIN/../../nvidia/{cudnn,nvshmem,nccl,cusparselt,cu13}/lib:$ORIGIN) resolves with
# nothing exported (no LD_LIBRARY_PATH). Two flavours:
#   cpu   torch + the two CUDA libraries libtorch_cpu.so itself links (cudart, cupti). The binary
#         dlopen()s libtorch_cuda.so at start (src/torch_runtime.rs); here that fails and it runs on
#         the CPU.
#   cuda  torch + every NVIDIA library torch 2.11.0's metadata pins, so libtorch_cuda.so loads and
#         the same binary uses the GPU.
# Which one (GPS_CUDA):
#   unset/auto  cuda when this machine has an NVIDIA driver (/proc/driver/nvidia/version, a working
#               nvidia-smi, or libcuda.so.1 known to ldconfig), else cpu; but where .torch/ already
#               holds the cuda flavour it stays cuda (a superset of cpu, and on a shared file system
#               the GPU nodes may be using it; a login node must not swap it for cpu).
#   1           cuda (e.g. a login node without a GPU preparing a checkout for GPU nodes).
#   0           cpu, replacing a cuda install (gives back 2.8 GB of disk).
# Idempotent: .torch/INSTALL (flavour, torch version, package list) is written only after the install
# was verified, and .torch/ appears by a rename of the verified staging folder (.torch.partial/), so an
# interrupted or failed install never leaves a .torch/ that claims to be complete. Without that marker,
# with another torch version or package list, or with cpu installed where cuda is wanted, it reinstalls
# (from scratch: a partial install is never reused).
#
# The cuda package list, and how it was derived: torch-2.11.0.dist-info/METADATA's Requires-Dist,
# markers evaluated for Linux x86_64 / CPython 3.x, no extras, keeping the NVIDIA ones:
#   cuda-toolkit[cublas,cudart,cufft,cufile,cupti,curand,cusolver,cusparse,nvjitlink,nvrtc,nvtx]==13.0.2
#   nvidia-cudnn-cu13==9.19.0.56  nvidia-cusparselt-cu13==0.8.0  nvidia-nccl-cu13==2.28.9
#   nvidia-nvshmem-cu13==3.4.5
# and cuda-toolkit-13.0.2's METADATA, for those 11 extras (its pins are "==X.*"; each resolves on PyPI
# to exactly X): nvidia-cublas 13.1.0.3, nvidia-cuda-runtime 13.0.96, nvidia-cufft 12.0.0.61,
# nvidia-cufile 1.15.1.6, nvidia-cuda-cupti 13.0.85, nvidia-curand 10.4.0.35, nvidia-cusolver
# 12.0.4.66, nvidia-cusparse 12.6.3.3, nvidia-nvjitlink 13.0.88, nvidia-cuda-nvrtc 13.0.88,
# nvidia-nvtx 13.0.85. The NVIDIA packages' own requirements (cufft, cusparse -> nvjitlink; cusolver
# -> cublas, nvjitlink, cusparse; cudnn -> cublas) are all inside this set. cuda-toolkit is a meta
# package (a dist-info, no files); it comes along only so the check below can follow the metadata.
# Left out on purpose: triton 3.6.0 (the Python JIT compiler; libtorch never loads it), cuda-bindings
# (Python bindings), and the pure-Python deps (sympy, networkx, jinja2, fsspec, filelock,
# typing-extensions, setuptools). After every install the script re-derives this chain from the
# installed METADATA files and fails if the frozen list below differs from it in any way.
#
# Measured here (2026-12-03, Debian 12, 2 cores, CPython 3.11, PyPI, pip cache off), including
# download, unpack and verification:
#   cpu   download 0.54 GB (4 wheels),  1.19 GB on disk, 19-26 s (download 6-8 s, unpack 11-19 s)
#   cuda  download 2.51 GB (17 wheels), 3.98 GB on disk, 55-67 s (download 22-30 s, unpack 27-35 s,
#         verify 2 s); by folder: torch 1.1 GiB, nvidia/cu13 1.7 GiB, cudnn 471 MiB, cusparselt
#         223 MiB, nccl 209 MiB, nvshmem 78 MiB
#   replacing an install adds deleting the old tree: 7-26 s here (mostly torch/'s 12,000 files, on
#   an ext4 mounted with discard)
#   a second run (nothing to do): 0.05 s
# While installing, .torch.partial/ holds the wheels and the unpacked tree (cuda: up to 6.5 GB, next
# to the old .torch/); pip's TMPDIR points there too, so nothing big lands in /tmp.
# The five folders in the wheel's RPATH are exactly where these wheels put their libraries:
# nvidia/cu13/lib (cublas, cudart, cufft, cufile, cupti, curand, cusolver, cusparse, nvjitlink,
# nvrtc, nvtx), nvidia/cudnn/lib, nvidia/nccl/lib, nvidia/cusparselt/lib, nvidia/nvshmem/lib.
set -euo pipefail
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/.."

TORCH_VERSION=2.11.0
CPU_PACKAGES=(
  torch==2.11.0 cuda-toolkit==13.0.2 nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85
)
CUDA_PACKAGES=(
  torch==2.11.0 cuda-toolkit==13.0.2
  # cuda-toolkit[...]==13.0.2 extras:
  nvidia-cublas==13.1.0.3 nvidia-cuda-runtime==13.0.96 nvidia-cufft==12.0.0.61
  nvidia-cufile==1.15.1.6 nvidia-cuda-cupti==13.0.85 nvidia-curand==10.4.0.35
  nvidia-cusolver==12.0.4.66 nvidia-cusparse==12.6.3.3 nvidia-nvjitlink==13.0.88
  nvidia-cuda-nvrtc==13.0.88 nvidia-nvtx==13.0.85
  # pinned by torch directly:
  nvidia-cudnn-cu13==9.19.0.56 nvidia-cusparselt-cu13==0.8.0 nvidia-nccl-cu13==2.28.9
  nvidia-nvshmem-cu13==3.4.5
)
# Measured sizes (GB), printed before a download starts.
CPU_DOWNLOAD_GB=0.54 CPU_DISK_GB=1.19
CUDA_DOWNLOAD_GB=2.51 CUDA_DISK_GB=3.98

DEST=.torch
STAGE=.torch.partial   # git-ignored; holds root/ (the future .torch), wheels/, tmp/, old/
MARKER=INSTALL

say() { echo "setup-libtorch: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

has_nvidia_driver() {
  if [ -e /proc/driver/nvidia/version ]; then
    driver_evidence=/proc/driver/nvidia/version; return 0
  fi
  if command -v nvidia-smi >/dev/null 2>&1; then
    if { command -v timeout >/dev/null 2>&1 && timeout 30 nvidia-smi -L >/dev/null 2>&1; } ||
       { ! command -v timeout >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }; then
      driver_evidence="nvidia-smi -L"; return 0
    fi
  fi
  local ldc
  for ldc in ldconfig /sbin/ldconfig /usr/sbin/ldconfig; do
    if command -v "$ldc" >/dev/null 2>&1; then
      if "$ldc" -p 2>/dev/null | grep -q '[[:space:]]libcuda\.so\.1[[:space:]]'; then
        driver_evidence="libcuda.so.1 in the ldconfig cache"; return 0
      fi
      break
    fi
  done
  return 1
}

# One setup at a time per checkout (several jobs on a shared file system may start together); the
# lock is on this script file, so nothing new appears in the checkout. Without flock support: no lock.
# The lock is inherited by pip, so an install whose shell was killed still holds it until pip ends.
locked=0
if command -v flock >/dev/null 2>&1 && exec 9<"$self"; then
  if flock -n 9 2>/dev/null; then locked=1
  else
    say "waiting for another setup-libtorch.sh in this checkout to finish"
    if flock 9 2>/dev/null; then locked=1
    else say "warning: cannot lock $self; continuing without a lock"; fi
  fi
fi

marker_value() { sed -n "s/^$1=//p" "$DEST/$MARKER" 2>/dev/null | head -n 1; }

# --- what is wanted -------------------------------------------------------------------------------
driver_evidence=""
case "${GPS_CUDA:-auto}" in
  1|cuda) want=cuda; why="GPS_CUDA=1" ;;
  0|cpu) want=cpu; why="GPS_CUDA=0" ;;
  auto)
    if has_nvidia_driver; then want=cuda; why="NVIDIA driver found ($driver_evidence)"
    elif [ "$(marker_value flavour)" = cuda ]; then
      want=cuda; why="no NVIDIA driver here, but $DEST/ holds the cuda flavour: kept (GPS_CUDA=0 for cpu)"
    else want=cpu; why="no NVIDIA driver found (GPS_CUDA=1 installs the CUDA libraries anyway)"; fi ;;
  *) die "GPS_CUDA must be 1, 0 or unset (got '${GPS_CUDA}')" ;;
esac
packages_of() { if [ "$1" = cuda ]; then echo "${CUDA_PACKAGES[*]}"; else echo "${CPU_PACKAGES[*]}"; fi; }

# --- is the current .torch good enough? -------------------------------------------------------------
if [ -f "$DEST/$MARKER" ] && [ -f "$DEST/torch/lib/libtorch_cpu.so" ]; then
  have=$(marker_value flavour)
  if [ "$(marker_value torch)" = "$TORCH_VERSION" ] && [ -n "$have" ] &&
     [ "$(marker_value packages)" = "$(packages_of "$have")" ]; then
    if [ "$have" = "$want" ]; then
      if [ -e "$STAGE" ] && [ "$locked" = 1 ]; then
        say "removing $STAGE/, left over by an interrupted install"; rm -rf "$STAGE"
      fi
      exit 0
    fi
    say "$DEST/ holds the $have install but $want is wanted ($why): reinstalling"
  else
    say "$DEST/ was installed by another version of this script: reinstalling"
  fi
elif [ -e "$DEST" ]; then
  say "$DEST/ has no $MARKER marker (incomplete, or from an older setup script): reinstalling"
fi

# --- install into the staging folder --------------------------------------------------------------
command -v python3 >/dev/null 2>&1 || die "python3 not found"
python3 -m pip --version >/dev/null 2>&1 || die "python3 has no pip (install python3-pip)"
read -r -a packages <<<"$(packages_of "$want")"
if [ "$want" = cuda ]; then est_dl=$CUDA_DOWNLOAD_GB est_disk=$CUDA_DISK_GB
else est_dl=$CPU_DOWNLOAD_GB est_disk=$CPU_DISK_GB; fi
say "installing the $want flavour of torch==$TORCH_VERSION into $DEST/ ($why):"
say "  ${#packages[@]} packages: ${packages[*]}"
say "  downloads about $est_dl GB from PyPI and takes $est_disk GB on disk"

rm -rf "$STAGE"
mkdir -p "$STAGE/wheels" "$STAGE/tmp"
export TMPDIR="$PWD/$STAGE/tmp"   # pip's temporary unpack folder: same file system, not /tmp
pip_quiet=(--quiet)
[ -t 2 ] && pip_quiet=()          # show pip's progress bars on a terminal
pip_common=(--disable-pip-version-check --no-input "${pip_quiet[@]}")
export PIP_ROOT_USER_ACTION=ignore   # no "running pip as root" warning (older pips ignore this)
t0=$SECONDS
python3 -m pip download "${pip_common[@]}" --no-deps --only-binary=:all: -d "$STAGE/wheels" \
  "${packages[@]}" >&2 || die "pip download failed (no $DEST/ change; rerun to retry)"
t1=$SECONDS
nwheels=$(find "$STAGE/wheels" -name '*.whl' | wc -l)
dl_bytes=$(du -cb "$STAGE"/wheels/*.whl | tail -n 1 | cut -f 1)
gb() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1e9 }'; }
say "  downloaded $nwheels wheels, $(gb "$dl_bytes") GB, in $((t1 - t0)) s; unpacking"
python3 -m pip install "${pip_common[@]}" --no-deps --no-index --no-compile \
  --no-warn-script-location --target "$STAGE/root" "$STAGE"/wheels/*.whl >&2 ||
  die "pip install failed (no $DEST/ change; rerun to retry)"
rm -rf "$STAGE/wheels" "$STAGE/tmp" "$STAGE/root/bin"
unset TMPDIR
t2=$SECONDS

kept=" (the unverified tree stays in $STAGE/ for a look; the next run removes it)"

# --- verify ---------------------------------------------------------------------------------------
# 1. The installed set is exactly the frozen list, and it is what torch's own metadata pins.
python3 - "$STAGE/root" "$want" "${packages[@]}" <<'PY' || die "the package check failed (see above); $DEST/ left unchanged$kept"
import email.parser, glob, os, sys
try:
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name
except ImportError:
    try:
        from packaging.requirements import Requirement
        from packaging.utils import canonicalize_name
    except ImportError:
        print("setup-libtorch: warning: no 'packaging' module; metadata check skipped", file=sys.stderr)
        sys.exit(0)
root, flavour, expected = sys.argv[1], sys.argv[2], sys.argv[3:]
want = {canonicalize_name(p.split("==")[0]): p.split("==")[1] for p in expected}
inst = {}
for d in glob.glob(os.path.join(root, "*.dist-info")):
    with open(os.path.join(d, "METADATA"), encoding="utf-8") as f:
        m = email.parser.Parser().parsestr(f.read())
    inst[canonicalize_name(m["Name"])] = (m["Version"], m.get_all("Requires-Dist") or [])
errors = []
got = {n: v for n, (v, _) in inst.items()}
if got != want:
    errors.append(f"installed {sorted(got.items())} != wanted {sorted(want.items())}")
# Follow torch -> cuda-toolkit[extras] -> nvidia-* -> ... through the installed METADATA.
pins, skipped, todo, seen = {}, set(), [("torch", ())], set()
while todo:
    name, extras = todo.pop()
    if (name, extras) in seen or name not in inst:
        continue
    seen.add((name, extras))
    for r in inst[name][1]:
        q = Requirement(r)
        if q.marker and not any(q.marker.evaluate({"extra": e}) for e in (extras or ("",))):
            continue
        n = canonicalize_name(q.name)
        if not (n.startswith("nvidia-") or n == "cuda-toolkit"):
            skipped.add(n)
            continue
        pins.setdefault(n, []).append((name, q.specifier))
        todo.append((n, tuple(sorted(q.extras))))
for n, (v, _) in sorted(inst.items()):
    if n == "torch":
        continue
    if n not in pins:
        errors.append(f"{n} {v} is installed but torch's metadata does not require it")
    for who, spec in pins.get(n, []):
        if not spec.contains(v, prereleases=True):
            errors.append(f"{n} {v} does not satisfy {who}'s pin '{spec}'")
missing = sorted(set(pins) - set(inst))
if flavour == "cuda" and missing:
    errors.append("pinned by torch's metadata but not installed: " + ", ".join(missing))
for e in errors:
    print("setup-libtorch:   " + e, file=sys.stderr)
if errors:
    sys.exit(1)
if flavour == "cuda":
    libs = [n for n in pins if n != "cuda-toolkit"]
    print(f"setup-libtorch:   metadata: {len(inst)} packages = the frozen list; all {len(libs)} NVIDIA "
          f"libraries torch {inst['torch'][0]} pins (directly and via cuda-toolkit) at the pinned versions; "
          "left out on purpose: " + ", ".join(sorted(skipped)), file=sys.stderr)
else:
    print(f"setup-libtorch:   metadata: {len(inst)} packages = the frozen list, each at the version torch "
          f"{inst['torch'][0]} pins; {len(missing)} more NVIDIA packages only in the cuda flavour", file=sys.stderr)
PY

# 2. The libraries load, with nothing exported, as the binary loads them (dlopen, RTLD_NOW|GLOBAL).
#    libtorch_cuda.so does not need the driver: libcuda.so.1 is dlopen()ed lazily, on first CUDA use.
lib="$STAGE/root/torch/lib"
if [ "$want" = cuda ]; then load=(libtorch_cuda.so libtorch_cuda_linalg.so)
else load=(libtorch_cpu.so); fi
env -u LD_LIBRARY_PATH -u LD_PRELOAD python3 - "$lib" "${load[@]}" <<'PY' || die "a libtorch library does not load (see above); $DEST/ left unchanged$kept"
import ctypes, os, sys
d = os.path.abspath(sys.argv[1])
for name in sys.argv[2:]:
    try:
        ctypes.CDLL(os.path.join(d, name), mode=ctypes.RTLD_GLOBAL)  # ctypes adds RTLD_NOW
    except OSError as e:
        print(f"setup-libtorch:   {name}: {e}", file=sys.stderr)
        sys.exit(1)
print("setup-libtorch:   dlopen with no LD_LIBRARY_PATH: " + ", ".join(sys.argv[2:]) + ": ok", file=sys.stderr)
PY

# 3. ldd (each library on its own, nothing exported): every DT_NEEDED entry of every library
#    libtorch may load (torch/lib, and in the cuda flavour all of nvidia/) resolves, and inside
#    .torch/ except for the basic system libraries. Allowed missing: the driver's libcuda.so.1 and
#    libnvidia-ml.so.1. Not checked: optional plugins that libtorch never loads and that need
#    cluster software (RDMA, MPI, PMIx, UCX, libfabric): libcufile_rdma, libcusolverMg (multi-GPU
#    cuSOLVER, no RUNPATH), nvshmem_bootstrap_* / nvshmem_transport_* (dlopen()ed by NVSHMEM on
#    request). They are the same in a plain `pip install torch`.
if command -v ldd >/dev/null 2>&1; then
  env -u LD_LIBRARY_PATH -u LD_PRELOAD python3 - "$STAGE/root" "$want" <<'PY' || die "unresolved shared libraries (above); $DEST/ left unchanged$kept"
import glob, os, re, subprocess, sys
root, flavour = os.path.abspath(sys.argv[1]), sys.argv[2]
if flavour == "cuda":
    files = glob.glob(f"{root}/torch/lib/*.so*") + glob.glob(f"{root}/nvidia/*/lib/*.so*")
else:
    # libtorch.so itself needs libtorch_cuda.so; the binary links libtorch_cpu.so and libc10.so.
    files = [f"{root}/torch/lib/{n}" for n in ("libtorch_cpu.so", "libc10.so")]
optional = re.compile(r"^(libcufile_rdma\.so|libcusolverMg\.so|nvshmem_bootstrap_|nvshmem_transport_)")
driver = {"libcuda.so.1", "libnvidia-ml.so.1"}
system = re.compile(r"^(linux-vdso|ld-linux[-\w]*|libc|libm|libdl|librt|libpthread|libutil|libstdc\+\+|libgcc_s|libz)\.so")
errors, checked, skipped = [], 0, []
for f in sorted(files):
    name = os.path.basename(f)
    if optional.match(name):
        skipped.append(name)
        continue
    out = subprocess.run(["ldd", f], capture_output=True, text=True)
    if out.returncode != 0:
        errors.append(f"{f}: ldd failed: {out.stderr.strip() or out.stdout.strip()}")
        continue
    checked += 1
    for line in out.stdout.splitlines():
        m = re.match(r"\s*(\S+)(?: => (.*?))?(?: \(0x[0-9a-f]+\))?$", line)
        if not m:
            continue
        dep, where = m.group(1), m.group(2)
        if where == "not found":
            if dep not in driver:
                errors.append(f"{f[len(root) + 1:]}: {dep} not found")
        elif where is not None and not os.path.realpath(where).startswith(root + os.sep) \
                and not system.match(dep):
            errors.append(f"{f[len(root) + 1:]}: {dep} resolved outside .torch: {where}")
for e in dict.fromkeys(errors):
    print("setup-libtorch:   " + e, file=sys.stderr)
if errors:
    sys.exit(1)
print(f"setup-libtorch:   ldd: {checked} libraries, every dependency resolves inside .torch/ or to "
      f"the basic system libraries (libcuda/libnvidia-ml: the driver's, loaded lazily)"
      + (f"; optional plugins not checked: {len(skipped)}" if skipped else ""), file=sys.stderr)
PY
fi
t3=$SECONDS

# --- mark and swap in -----------------------------------------------------------------------------
disk_bytes=$(du -sb "$STAGE/root" | cut -f 1)
{
  echo "flavour=$want"
  echo "torch=$TORCH_VERSION"
  echo "packages=${packages[*]}"
  echo "python=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  echo "download_bytes=$dl_bytes"
  echo "disk_bytes=$disk_bytes"
  echo "seconds=$((t3 - t0))"
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$STAGE/root/$MARKER.tmp"
mv "$STAGE/root/$MARKER.tmp" "$STAGE/root/$MARKER"
if [ -e "$DEST" ] || [ -L "$DEST" ]; then mv "$DEST" "$STAGE/old"; fi
mv "$STAGE/root" "$DEST"
[ -e "$STAGE/old" ] && say "  installed; removing the replaced $DEST/"
rm -rf "$STAGE"
say "done: $want, $(gb "$disk_bytes") GB in $DEST/, $(gb "$dl_bytes") GB downloaded, $SECONDS s in all" \
  "(download $((t1 - t0)) s, unpack $((t2 - t1)) s, verify $((t3 - t2)) s, clean-up $((SECONDS - t3)) s)"
