//! The GPU figures of a sample: which GPUs a run has (`CUDA_VISIBLE_DEVICES`), and where their
//! readings come from, behind the [`GpuSource`] seam.
//!
//! [`default_source`] answers as [`crate::gpu::discover`] does: the inventory file named by
//! `EXPMAN_GPU_INVENTORY` when set (re-read at every sample, so a test can change the readings
//! while a run goes on), else NVML with the `gpu` feature, else none. A Rust caller can hand
//! its own source to [`SystemMetrics::gpu_source`](super::SystemMetrics::gpu_source).

use std::path::PathBuf;

use crate::gpu::{ENV_GPU_INVENTORY, read_inventory};

/// One GPU as `CUDA_VISIBLE_DEVICES` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VisibleGpu {
    /// An index in PCI bus order (the scheduler sets `CUDA_DEVICE_ORDER=PCI_BUS_ID`, which
    /// makes CUDA's and NVML's indices agree).
    Index(u32),
    /// A UUID such as `GPU-8f0c...` (or a unique prefix of one, as CUDA accepts).
    Uuid(String),
}

/// The GPUs a `CUDA_VISIBLE_DEVICES` value names, in its order. CUDA stops at the first
/// entry it cannot parse, and so does this; MIG instances (`MIG-...`) are not sampled (NVML
/// reports them through their parent GPU). Unset or empty: none, because a run without an
/// assignment would otherwise be charged with every other user's GPU work.
pub fn visible_gpus(value: Option<&str>) -> Vec<VisibleGpu> {
    let mut gpus = Vec::new();
    for entry in value.unwrap_or("").split(',').map(str::trim) {
        if let Ok(index) = entry.parse::<u32>() {
            gpus.push(VisibleGpu::Index(index));
        } else if entry.starts_with("GPU-") {
            gpus.push(VisibleGpu::Uuid(entry.to_string()));
        } else {
            break;
        }
    }
    gpus
}

/// One GPU's figures at one moment; a figure the GPU does not report is `None` (an empty cell).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuReading {
    /// The GPU's index (NVML's, PCI bus order): the `N` in the `gpuN_*` columns.
    pub index: u32,
    /// Percent of the last sample period in which a kernel ran.
    pub utilization_percent: Option<u32>,
    /// Memory in use, in MiB.
    pub memory_used_mib: Option<u64>,
    /// Installed memory, in MiB.
    pub memory_total_mib: Option<u64>,
    /// Power draw in watts.
    pub power_w: Option<f64>,
    /// Core temperature in degrees Celsius.
    pub temperature_c: Option<u32>,
}

/// Where GPU readings come from: NVML, an injected inventory, or a test's own.
pub trait GpuSource: Send {
    /// The figures of `gpus`, in that order; a GPU the source does not know is left out.
    /// `Err` is one sentence saying why nothing could be read (it goes into the run's log
    /// once; the sampler keeps trying at each sample).
    fn read(&mut self, gpus: &[VisibleGpu]) -> Result<Vec<GpuReading>, String>;
}

/// The source [`crate::gpu::discover`] would use: the injected inventory, else NVML, else
/// `Err` saying why there is none.
pub fn default_source() -> Result<Box<dyn GpuSource>, String> {
    match std::env::var_os(ENV_GPU_INVENTORY) {
        Some(path) if !path.is_empty() => Ok(Box::new(InventoryGpus::new(path))),
        _ => nvml_source(),
    }
}

/// Readings from an inventory file (a JSON list of [`crate::gpu::Gpu`], as named by
/// `EXPMAN_GPU_INVENTORY`), read again at every sample. `power_mw` and `temperature_c` are
/// optional there; a GPU without them gets empty cells.
pub struct InventoryGpus {
    path: PathBuf,
}

impl InventoryGpus {
    /// Readings from the inventory file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> InventoryGpus {
        InventoryGpus { path: path.into() }
    }
}

impl GpuSource for InventoryGpus {
    fn read(&mut self, gpus: &[VisibleGpu]) -> Result<Vec<GpuReading>, String> {
        let inventory = read_inventory(&self.path).map_err(|e| e.to_string())?;
        Ok(gpus
            .iter()
            .filter_map(|wanted| {
                inventory.iter().find(|gpu| match wanted {
                    VisibleGpu::Index(index) => gpu.index == *index,
                    VisibleGpu::Uuid(uuid) => gpu.uuid.starts_with(uuid.as_str()),
                })
            })
            .map(|gpu| GpuReading {
                index: gpu.index,
                utilization_percent: Some(gpu.utilization_percent),
                memory_used_mib: Some(gpu.memory_used_mib),
                memory_total_mib: Some(gpu.memory_total_mib),
                power_w: gpu.power_mw.map(|mw| f64::from(mw) / 1000.0),
                temperature_c: gpu.temperature_c,
            })
            .collect())
    }
}

#[cfg(not(feature = "gpu"))]
fn nvml_source() -> Result<Box<dyn GpuSource>, String> {
    Err(
        "no GPU metrics: expman was built without the `gpu` feature (NVML); rebuild with \
         `--features gpu`"
            .to_string(),
    )
}

#[cfg(feature = "gpu")]
fn nvml_source() -> Result<Box<dyn GpuSource>, String> {
    nvml::NvmlGpus::init().map(|source| Box::new(source) as Box<dyn GpuSource>)
}

/// NVML, initialised once per sampler (initialisation costs milliseconds; a reading does not).
#[cfg(feature = "gpu")]
mod nvml {
    use nvml_wrapper::Nvml;
    use nvml_wrapper::enum_wrappers::device::TemperatureSensor;

    use super::{GpuReading, GpuSource, VisibleGpu};

    const MIB: u64 = 1024 * 1024;

    pub(super) struct NvmlGpus {
        nvml: Nvml,
    }

    impl NvmlGpus {
        pub(super) fn init() -> Result<NvmlGpus, String> {
            Nvml::init()
                .map(|nvml| NvmlGpus { nvml })
                .map_err(|e| format!("no GPU metrics: NVML not available ({e})"))
        }
    }

    impl GpuSource for NvmlGpus {
        fn read(&mut self, gpus: &[VisibleGpu]) -> Result<Vec<GpuReading>, String> {
            let mut readings = Vec::with_capacity(gpus.len());
            let mut failure = None;
            for wanted in gpus {
                let device = match wanted {
                    VisibleGpu::Index(index) => self.nvml.device_by_index(*index),
                    VisibleGpu::Uuid(uuid) => self.nvml.device_by_uuid(uuid.as_str()),
                };
                let device = match device {
                    Ok(device) => device,
                    Err(e) => {
                        failure = Some(format!("NVML cannot open GPU {wanted:?} ({e})"));
                        continue;
                    }
                };
                let Ok(index) = device.index() else { continue };
                let memory = device.memory_info().ok();
                readings.push(GpuReading {
                    index,
                    utilization_percent: device.utilization_rates().ok().map(|u| u.gpu),
                    memory_used_mib: memory.as_ref().map(|m| m.used / MIB),
                    memory_total_mib: memory.as_ref().map(|m| m.total / MIB),
                    power_w: device.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
                    temperature_c: device.temperature(TemperatureSensor::Gpu).ok(),
                });
            }
            match failure {
                Some(why) if readings.is_empty() => Err(why),
                _ => Ok(readings),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_devices_as_cuda_reads_them() {
        use VisibleGpu::{Index, Uuid};
        assert_eq!(visible_gpus(None), vec![]);
        assert_eq!(visible_gpus(Some("")), vec![]);
        assert_eq!(visible_gpus(Some("2, 0")), vec![Index(2), Index(0)]);
        assert_eq!(
            visible_gpus(Some("GPU-ab12,1")),
            vec![Uuid("GPU-ab12".into()), Index(1)]
        );
        // CUDA ignores everything from the first invalid entry on.
        assert_eq!(visible_gpus(Some("1,x,2")), vec![Index(1)]);
        assert_eq!(visible_gpus(Some("-1")), vec![]);
    }
}
