//! What Plumbline's benchmarks and end-to-end tests share: simulated fleets
//! that send what real node agents would.

pub mod gpu_fleet;
