//! What Plumbline's benchmarks and end-to-end tests share: simulated fleets
//! that send what real node agents would, and the rows of a host's AI
//! agents as the aggregator receives them.

pub mod agent_host;
pub mod gpu_fleet;
