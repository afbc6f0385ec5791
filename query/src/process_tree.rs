//! A process with its ancestors and descendants, assembled level by level
//! from the store's process reads.

use plumbline_store::{ProcessFilter, ProcessRecord, StoreRead};

use crate::error::QueryError;

/// Children per level read from the store at most.
const LEVEL_LIMIT: u32 = 10_000;
const MAX_ANCESTORS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeNode {
    pub process: ProcessRecord,
    pub children: Vec<TreeNode>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessTree {
    /// Parent first.
    pub ancestors: Vec<ProcessRecord>,
    pub root: TreeNode,
}

/// The tree around (`host`, `pid`): the most recent process with that pid,
/// or the one started at `start_key_ns` when given.
pub async fn process_tree(
    store: &dyn StoreRead,
    host: &str,
    pid: u32,
    start_key_ns: Option<u64>,
    max_depth: u32,
) -> Result<ProcessTree, QueryError> {
    let root = store
        .list_processes(&ProcessFilter {
            host: Some(host.to_string()),
            pid: Some(pid),
            start_key_ns,
            limit: 1,
            ..Default::default()
        })
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| QueryError::NotFound(format!("no process {pid} known on host {host}")))?;

    let ancestors = ancestors(store, &root).await?;
    let root = descendants(store, root, max_depth).await?;
    Ok(ProcessTree { ancestors, root })
}

async fn ancestors(store: &dyn StoreRead, process: &ProcessRecord) -> Result<Vec<ProcessRecord>, QueryError> {
    let mut chain = Vec::new();
    let mut child = process.clone();
    while child.ppid != 0 && chain.len() < MAX_ANCESTORS {
        let candidates = store
            .list_processes(&ProcessFilter {
                host: Some(child.host.clone()),
                boot_id: Some(child.boot_id.clone()),
                pid: Some(child.ppid),
                limit: 100,
                ..Default::default()
            })
            .await?;
        // Newest first: the first one started before the child is its parent.
        match candidates.into_iter().find(|p| p.start_key_ns <= child.start_key_ns) {
            Some(parent) => {
                chain.push(parent.clone());
                child = parent;
            }
            None => break,
        }
    }
    Ok(chain)
}

async fn descendants(store: &dyn StoreRead, root: ProcessRecord, max_depth: u32) -> Result<TreeNode, QueryError> {
    // Levels of processes; each child records the index of its parent in
    // the level above.
    let mut levels: Vec<Vec<(ProcessRecord, usize)>> = vec![vec![(root, 0)]];
    for _ in 0..max_depth {
        let parents = levels.last().unwrap();
        let mut ppids: Vec<u32> = parents.iter().map(|(p, _)| p.pid).collect();
        ppids.sort_unstable();
        ppids.dedup();
        let first = &parents[0].0;
        let children = store
            .list_processes(&ProcessFilter {
                host: Some(first.host.clone()),
                boot_id: Some(first.boot_id.clone()),
                ppids,
                limit: LEVEL_LIMIT,
                ..Default::default()
            })
            .await?;
        let mut level: Vec<(ProcessRecord, usize)> =
            children.into_iter().filter_map(|child| parent_index(parents, &child).map(|i| (child, i))).collect();
        // Children in the order they started.
        level.sort_by_key(|(p, _)| (p.start_wall_ns, p.pid));
        if level.is_empty() {
            break;
        }
        levels.push(level);
    }
    // Fold the levels bottom-up into nodes.
    let mut below: Vec<(TreeNode, usize)> = Vec::new();
    for level in levels.into_iter().rev() {
        let mut nodes: Vec<TreeNode> =
            level.iter().map(|(process, _)| TreeNode { process: process.clone(), children: Vec::new() }).collect();
        for (node, parent) in below.into_iter().rev() {
            nodes[parent].children.insert(0, node);
        }
        below = nodes.into_iter().zip(level.into_iter().map(|(_, parent)| parent)).collect();
    }
    Ok(below.into_iter().next().expect("the root level is never empty").0)
}

/// The parent of `child` among `parents`: same pid, started before the
/// child and not exited before it started; the most recent such one.
fn parent_index(parents: &[(ProcessRecord, usize)], child: &ProcessRecord) -> Option<usize> {
    parents
        .iter()
        .enumerate()
        .filter(|(_, (p, _))| {
            p.pid == child.ppid
                && p.start_key_ns <= child.start_key_ns
                && (!p.exited || p.exit_wall_ns >= child.start_wall_ns)
        })
        .max_by_key(|(_, (p, _))| p.start_key_ns)
        .map(|(i, _)| i)
}
