//! GPU inventory and assignment: what `EXP gpus` lists and what the scheduler hands out.
//!
//! [`discover`] answers, in this order:
//!
//! 1. the file named by [`ENV_GPU_INVENTORY`] (a JSON list of [`Gpu`] objects), if the variable
//!    is set and not empty. Tests and benchmarks inject GPUs this way, and because it is an
//!    environment variable the injection reaches child processes too;
//! 2. NVML (the NVIDIA driver's management library, loaded at run time), when expman is built
//!    with the `gpu` feature;
//! 3. otherwise [`Source::Unavailable`], with one sentence saying why. A machine without a GPU or
//!    driver is an ordinary case, not an error: the scheduler falls back to its configured pool.
//!
//! [`pick`] chooses GPUs for a job from an inventory. This module exists in every build; only the
//! NVML query needs the `gpu` feature.
//!
//! GPU indices are NVML's, which are PCI bus order. They match `CUDA_VISIBLE_DEVICES` only under
//! `CUDA_DEVICE_ORDER=PCI_BUS_ID`, which is why the scheduler sets that variable for every job.
//!
//! ```
//! use std::collections::HashSet;
//! use expman::gpu::{Gpu, pick};
//!
//! let gpu = |index: u32, used: u64| Gpu {
//!     index,
//!     uuid: format!("GPU-{index}"),
//!     name: "Test GPU".into(),
//!     memory_used_mib: used,
//!     memory_total_mib: 16_000,
//!     utilization_percent: 0,
//!     processes: Vec::new(),
//!     power_mw: None,
//!     temperature_c: None,
//! };
//! let inventory = [gpu(0, 9_000), gpu(1, 500), gpu(2, 100)];
//! // GPU 2 has the most free memory but an expman job holds it.
//! let busy = HashSet::from([2]);
//! assert_eq!(pick(&inventory, 1, &busy), Some(vec![1]));
//! assert_eq!(pick(&inventory, 3, &busy), None);
//! ```

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The environment variable naming an injected inventory file (a JSON list of [`Gpu`] objects).
/// When set and not empty it replaces NVML entirely, in this process and in its children.
pub const ENV_GPU_INVENTORY: &str = "EXPMAN_GPU_INVENTORY";

/// One GPU as NVML (or an injected inventory) reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gpu {
    /// NVML's index (PCI bus order); the number `CUDA_VISIBLE_DEVICES` uses under
    /// `CUDA_DEVICE_ORDER=PCI_BUS_ID`.
    pub index: u32,
    /// The GPU's UUID, e.g. `GPU-8f0c...`; stable across reboots, unlike the index.
    pub uuid: String,
    /// The product name, e.g. `NVIDIA H100 80GB HBM3`.
    pub name: String,
    /// Memory in use, in MiB.
    pub memory_used_mib: u64,
    /// Installed memory, in MiB.
    pub memory_total_mib: u64,
    /// Percent of the last sample period in which a kernel was running (0 when unknown).
    pub utilization_percent: u32,
    /// Processes with a compute context on this GPU (any user's, not only expman's).
    #[serde(default)]
    pub processes: Vec<GpuProcess>,
    /// Power draw in milliwatts, when the GPU reports it (what the system metrics record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_mw: Option<u32>,
    /// Core temperature in degrees Celsius, when the GPU reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<u32>,
}

impl Gpu {
    /// Memory not in use, in MiB (never negative, even if a report has used > total).
    pub fn memory_free_mib(&self) -> u64 {
        self.memory_total_mib.saturating_sub(self.memory_used_mib)
    }
}

/// A process with a compute context on a GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuProcess {
    /// The process id, in the driver's (host's) pid namespace.
    pub pid: u32,
    /// GPU memory the process uses, in MiB; `None` when the driver does not say (e.g. WDDM).
    #[serde(default)]
    pub used_memory_mib: Option<u64>,
}

/// Where an [`Inventory`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The file named by [`ENV_GPU_INVENTORY`].
    Injected(PathBuf),
    /// NVML, i.e. the NVIDIA driver.
    Nvml,
    /// No inventory: the sentence says why and what to do (no driver, built without the `gpu`
    /// feature, a broken injected file).
    Unavailable(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Injected(path) => write!(f, "{ENV_GPU_INVENTORY}={}", path.display()),
            Source::Nvml => f.write_str("NVML"),
            Source::Unavailable(why) => f.write_str(why),
        }
    }
}

/// The GPUs of this machine and where that list came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// The GPUs, in index order; empty when [`Inventory::source`] is [`Source::Unavailable`].
    pub gpus: Vec<Gpu>,
    /// Where [`Inventory::gpus`] came from.
    pub source: Source,
    /// GPUs NVML could only partly read, one sentence each (e.g. a GPU that fell off the bus
    /// is left out; one whose utilisation is not supported reports 0). Usually empty.
    pub warnings: Vec<String>,
}

impl Inventory {
    /// An inventory with no GPUs, saying why.
    pub fn unavailable(why: impl Into<String>) -> Inventory {
        Inventory {
            gpus: Vec::new(),
            source: Source::Unavailable(why.into()),
            warnings: Vec::new(),
        }
    }

    /// Why there is no inventory, when there is none.
    pub fn unavailable_reason(&self) -> Option<&str> {
        match &self.source {
            Source::Unavailable(why) => Some(why),
            _ => None,
        }
    }
}

/// The machine's GPUs: the injected file, else NVML, else [`Source::Unavailable`]. Never fails
/// and never panics; every problem, including a broken injected file, becomes
/// [`Source::Unavailable`] with one sentence naming the cause. Use [`try_discover`] to treat a
/// broken injected file as an error instead.
pub fn discover() -> Inventory {
    try_discover().unwrap_or_else(|e| Inventory::unavailable(e.to_string()))
}

/// Like [`discover`], but a file named by [`ENV_GPU_INVENTORY`] that cannot be read or is not
/// a valid inventory is an [`ErrorKind::Config`](crate::ErrorKind::Config) error naming the file.
/// A missing driver is still `Ok` with [`Source::Unavailable`]: it is a fact about the machine,
/// not a mistake.
pub fn try_discover() -> Result<Inventory> {
    match std::env::var_os(ENV_GPU_INVENTORY) {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            let gpus = read_inventory(&path)?;
            Ok(Inventory {
                gpus,
                source: Source::Injected(path),
                warnings: Vec::new(),
            })
        }
        _ => Ok(query_nvml()),
    }
}

/// Reads an inventory file: a JSON list of [`Gpu`] objects (`processes` may be left out).
/// The GPUs come back sorted by index; two GPUs with the same index are refused, because
/// [`pick`] could then hand one device to two jobs.
pub fn read_inventory(path: &Path) -> Result<Vec<Gpu>> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::config(
            &origin,
            format!(
                "cannot read this GPU inventory ({e}); {ENV_GPU_INVENTORY} must name a JSON file \
                 holding a list of GPUs, or be unset to ask NVML"
            ),
        )
    })?;
    let mut gpus: Vec<Gpu> = serde_json::from_str(&text).map_err(|e| {
        Error::config(
            &origin,
            format!(
                "not a GPU inventory: {e} (expected a JSON list of objects with index, uuid, \
                 name, memory_used_mib, memory_total_mib, utilization_percent and optional \
                 processes, power_mw and temperature_c)"
            ),
        )
    })?;
    gpus.sort_by_key(|gpu| gpu.index);
    if let Some(pair) = gpus.windows(2).find(|pair| pair[0].index == pair[1].index) {
        return Err(Error::config(
            origin,
            format!(
                "GPU index {} appears twice; give every GPU its own index",
                pair[0].index
            ),
        ));
    }
    Ok(gpus)
}

/// Writes `gpus` to `path` as an inventory file that [`read_inventory`] and
/// [`ENV_GPU_INVENTORY`] accept. The file is replaced atomically, so a process reading it
/// concurrently sees the old list or the new one, never half of one.
pub fn write_inventory(path: &Path, gpus: &[Gpu]) -> Result<()> {
    let mut json = serde_json::to_vec_pretty(gpus).expect("a GPU list always serialises");
    json.push(b'\n');
    crate::store::write_atomic(path, &json)
}

/// Chooses `count` GPUs for one job: those with the most free memory among the ones not in
/// `busy` (the indices expman jobs hold), ties going to the lower index. Returns their indices
/// in ascending order, or `None` when fewer than `count` GPUs are free. `count == 0` gives
/// `Some(vec![])`.
///
/// Memory used by processes outside expman counts against a GPU through its free memory, so a
/// GPU someone else is training on is chosen last but not refused.
pub fn pick(inventory: &[Gpu], count: usize, busy: &HashSet<u32>) -> Option<Vec<u32>> {
    let mut candidates: Vec<&Gpu> = inventory
        .iter()
        .filter(|gpu| !busy.contains(&gpu.index))
        .collect();
    candidates.sort_by(|a, b| {
        b.memory_free_mib()
            .cmp(&a.memory_free_mib())
            .then(a.index.cmp(&b.index))
    });
    // An inventory listing one index twice must still never yield it twice.
    let mut chosen: Vec<u32> = Vec::with_capacity(count);
    for gpu in candidates {
        if chosen.len() == count {
            break;
        }
        if !chosen.contains(&gpu.index) {
            chosen.push(gpu.index);
        }
    }
    if chosen.len() < count {
        return None;
    }
    chosen.sort_unstable();
    Some(chosen)
}

/// The scheduler's GPU pool, best first: `configured` (the config file's `gpus`) as given,
/// else every GPU [`discover`] finds, most free memory first (ties to the lower index). `Err`
/// says why there is none (no NVML, no inventory); the scheduler then runs jobs without GPUs.
///
/// Not [`pick`]: that returns the chosen indices in ascending order, and the scheduler hands
/// out the pool front to back.
pub fn pool(configured: Option<&[u32]>) -> std::result::Result<Vec<u32>, String> {
    if let Some(pool) = configured {
        return Ok(pool.to_vec());
    }
    let inventory = discover();
    if let Some(why) = inventory.unavailable_reason() {
        return Err(why.to_string());
    }
    let mut gpus = inventory.gpus;
    gpus.sort_by_key(|gpu| (std::cmp::Reverse(gpu.memory_free_mib()), gpu.index));
    Ok(gpus.iter().map(|gpu| gpu.index).collect())
}

/// `count` GPUs of this machine for a run started now (`gpu_ids="auto"`): the emptiest, by
/// [`pick`], in ascending order. An error says why there are none and what to do instead.
pub fn pick_now(count: usize) -> Result<Vec<u32>> {
    let inventory = try_discover()?;
    if let Some(why) = inventory.unavailable_reason() {
        return Err(Error::invalid_state(format!(
            "{why}; name the GPUs instead (gpu_ids=[0, 1]), or describe them in a JSON file named \
             by {ENV_GPU_INVENTORY} (`EXP gpus` shows what expman sees)"
        )));
    }
    pick(&inventory.gpus, count, &Default::default()).ok_or_else(|| {
        Error::invalid_state(format!(
            "asked for {count} GPUs but only {} exist",
            inventory.gpus.len()
        ))
    })
}

/// Checks a configured pool against this machine's GPUs: every index must be one of them. A
/// pool naming a GPU the machine lacks would give jobs a `CUDA_VISIBLE_DEVICES` that shows
/// them no GPU, or another one than meant. Without an inventory (no NVML, none injected)
/// nothing can be checked and the pool is taken as it is.
pub fn check_pool(configured: &[u32]) -> std::result::Result<(), String> {
    let inventory = discover();
    if inventory.unavailable_reason().is_some() {
        return Ok(());
    }
    let have: Vec<u32> = inventory.gpus.iter().map(|gpu| gpu.index).collect();
    let missing: Vec<String> = configured
        .iter()
        .filter(|index| !have.contains(index))
        .map(u32::to_string)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let have: Vec<String> = have.iter().map(u32::to_string).collect();
    Err(format!(
        "names GPU {} that this machine does not have (it has {}; `EXP gpus` lists them): \
         list only those, or leave `gpus` out to use them all",
        missing.join(", "),
        if have.is_empty() {
            "none".to_string()
        } else {
            have.join(", ")
        }
    ))
}

/// What `EXP gpus` prints: one row per GPU (index, name, memory used/total, utilisation, number
/// of processes, UUID), then where the list came from when it was injected, then any warnings.
/// Without an inventory it is the one sentence saying why. Always ends with a newline.
pub fn format_table(inv: &Inventory) -> String {
    let mut out = String::new();
    match &inv.source {
        Source::Unavailable(why) => {
            out.push_str(why);
            out.push('\n');
        }
        _ if inv.gpus.is_empty() => match &inv.source {
            Source::Injected(path) => {
                out.push_str(&format!("no GPUs listed in {}\n", path.display()));
            }
            _ => out.push_str("no GPUs: NVML reports none on this machine\n"),
        },
        _ => {
            let header = ["GPU", "NAME", "MEMORY", "UTIL", "PROCS", "UUID"];
            let rows: Vec<[String; 6]> = inv
                .gpus
                .iter()
                .map(|gpu| {
                    [
                        gpu.index.to_string(),
                        gpu.name.clone(),
                        format!("{} / {} MiB", gpu.memory_used_mib, gpu.memory_total_mib),
                        format!("{}%", gpu.utilization_percent),
                        gpu.processes.len().to_string(),
                        gpu.uuid.clone(),
                    ]
                })
                .collect();
            let mut widths = header.map(str::len);
            for row in &rows {
                for (width, cell) in widths.iter_mut().zip(row) {
                    *width = (*width).max(cell.chars().count());
                }
            }
            let mut push_row = |cells: [&str; 6]| {
                let mut line = String::new();
                for (i, cell) in cells.iter().enumerate() {
                    if i > 0 {
                        line.push_str("  ");
                    }
                    // Numbers right-aligned, text left-aligned; the last column is not padded.
                    match i {
                        0 | 3 | 4 => line.push_str(&format!("{cell:>w$}", w = widths[i])),
                        5 => line.push_str(cell),
                        _ => line.push_str(&format!("{cell:<w$}", w = widths[i])),
                    }
                }
                out.push_str(line.trim_end());
                out.push('\n');
            };
            push_row(header);
            for row in &rows {
                push_row(row.each_ref().map(String::as_str));
            }
            if let Source::Injected(path) = &inv.source {
                out.push_str(&format!(
                    "(injected: {ENV_GPU_INVENTORY}={})\n",
                    path.display()
                ));
            }
        }
    }
    for warning in &inv.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    out
}

/// The message when expman is built without NVML support.
#[cfg(not(feature = "gpu"))]
const NO_FEATURE: &str = "GPU discovery is not available: expman was built without the `gpu` \
     feature; rebuild with `--features gpu`, or set EXPMAN_GPU_INVENTORY to a JSON GPU list";

#[cfg(not(feature = "gpu"))]
fn query_nvml() -> Inventory {
    Inventory::unavailable(NO_FEATURE)
}

#[cfg(feature = "gpu")]
fn query_nvml() -> Inventory {
    nvml::query()
}

/// The NVML query, the only part of this module that needs the driver.
#[cfg(feature = "gpu")]
mod nvml {
    use nvml_wrapper::Nvml;
    use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
    use nvml_wrapper::enums::device::UsedGpuMemory;
    use nvml_wrapper::error::NvmlError;

    use super::{Gpu, GpuProcess, Inventory, Source};

    /// Bytes per MiB, the unit every memory figure in an inventory uses.
    const MIB: u64 = 1024 * 1024;

    /// The library nvml-wrapper loads on Linux (the versioned name the driver always installs).
    const LIBRARY: &str = "libnvidia-ml.so.1";

    pub(super) fn query() -> Inventory {
        // Loads the library with dlopen; on a machine without the driver this is where we stop.
        let nvml = match Nvml::init() {
            Ok(nvml) => nvml,
            Err(e) => return Inventory::unavailable(init_failure(&e)),
        };
        let count = match nvml.device_count() {
            Ok(count) => count,
            Err(e) => {
                return Inventory::unavailable(format!(
                    "NVML not available: it loaded but cannot count GPUs ({e}); \
                     check that `nvidia-smi` works"
                ));
            }
        };
        let mut gpus = Vec::with_capacity(count as usize);
        let mut warnings = Vec::new();
        for index in 0..count {
            match read_device(&nvml, index, &mut warnings) {
                Ok(gpu) => gpus.push(gpu),
                // Without its memory figures a GPU cannot be assigned safely; leave it out but
                // say so, rather than hiding every other GPU too.
                Err(e) => warnings.push(format!(
                    "GPU {index} left out: NVML cannot read it ({e}); check `nvidia-smi -i {index}`"
                )),
            }
        }
        Inventory {
            gpus,
            source: Source::Nvml,
            warnings,
        }
    }

    /// One device: identity and memory are required, utilisation and processes are optional
    /// (some GPUs and MIG setups answer "not supported" for them).
    fn read_device(nvml: &Nvml, index: u32, warnings: &mut Vec<String>) -> Result<Gpu, NvmlError> {
        let device = nvml.device_by_index(index)?;
        let uuid = device.uuid()?;
        let name = device.name()?;
        let memory = device.memory_info()?;
        let utilization_percent = match device.utilization_rates() {
            Ok(rates) => rates.gpu,
            Err(e) => {
                warnings.push(format!(
                    "GPU {index}: utilisation unknown ({e}); shown as 0%"
                ));
                0
            }
        };
        let processes = match device.running_compute_processes() {
            Ok(processes) => processes
                .into_iter()
                .map(|p| GpuProcess {
                    pid: p.pid,
                    used_memory_mib: match p.used_gpu_memory {
                        UsedGpuMemory::Used(bytes) => Some(bytes / MIB),
                        UsedGpuMemory::Unavailable => None,
                    },
                })
                .collect(),
            Err(e) => {
                warnings.push(format!("GPU {index}: process list unknown ({e})"));
                Vec::new()
            }
        };
        Ok(Gpu {
            index,
            uuid,
            name,
            memory_used_mib: memory.used / MIB,
            memory_total_mib: memory.total / MIB,
            utilization_percent,
            processes,
            // Optional: many GPUs (and MIG instances) do not report these.
            power_mw: device.power_usage().ok(),
            temperature_c: device.temperature(TemperatureSensor::Gpu).ok(),
        })
    }

    /// One sentence for a failed `nvmlInit`: what is missing and what to check.
    fn init_failure(e: &NvmlError) -> String {
        match e {
            NvmlError::LibloadingError(load) => {
                let detail = load.to_string();
                if detail.contains("No such file") {
                    format!(
                        "NVML not available: {LIBRARY} not found; is the NVIDIA driver installed?"
                    )
                } else {
                    format!(
                        "NVML not available: cannot load {LIBRARY} ({detail}); \
                         is the NVIDIA driver installed correctly?"
                    )
                }
            }
            NvmlError::FailedToLoadSymbol(symbol) => format!(
                "NVML not available: {LIBRARY} lacks a function expman needs ({symbol}); \
                 the NVIDIA driver is too old, update it"
            ),
            NvmlError::DriverNotLoaded => "NVML not available: the NVIDIA kernel driver is not \
                 loaded; check `nvidia-smi` and `lsmod | grep nvidia`"
                .to_string(),
            NvmlError::NoPermission => "NVML not available: no permission to talk to the \
                 NVIDIA driver; check access to /dev/nvidia*"
                .to_string(),
            other => {
                format!("NVML not available: initialisation failed ({other}); check `nvidia-smi`")
            }
        }
    }
}
