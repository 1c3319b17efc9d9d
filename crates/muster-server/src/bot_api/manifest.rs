//! The task manifest of a `run` poll reply (docs/bot-protocol.md#the-manifest): every key the
//! Python bot requires, with the types it requires.

use muster_api::bot::{
    encode_b64, Manifest, ManifestCache, ManifestCasRef, ManifestCipdInput, ManifestCipdPackage, ManifestDigest,
    ServiceAccount, ServiceAccounts,
};
use muster_core::{Error, TaskRequest, TaskResult};
use std::collections::BTreeMap;

pub(crate) fn build(req: &TaskRequest, res: &TaskResult, authenticated_as: &str) -> Result<Manifest, Error> {
    let slice = req
        .slices
        .get(res.current_slice.max(0) as usize)
        .ok_or_else(|| Error::internal(format!("task {} has no slice {}", req.id, res.current_slice)))?;
    let p = &slice.properties;
    let pkg = |c: &muster_core::task::CipdPackage| ManifestCipdPackage {
        package_name: c.package_name.clone(),
        version: c.version.clone(),
        path: Some(c.path.clone()),
    };
    let task_sa = match req.service_account.as_str() {
        "" => "none".to_string(),
        s => s.to_string(),
    };
    let mut containment = BTreeMap::new();
    containment.insert("containment_type".to_string(), p.containment.containment_type as i64);
    Ok(Manifest {
        task_id: res.id.run_id(),
        bot_id: res.bot_id.clone(),
        bot_dimensions: res.bot_dimensions.0.clone(),
        bot_authenticated_as: authenticated_as.to_string(),
        command: p.command.clone(),
        dimensions: p.dimensions.as_map(),
        env: p.env.iter().cloned().collect(),
        env_prefixes: p.env_prefixes.iter().cloned().collect(),
        grace_period: p.grace_period_secs as f64,
        hard_timeout: p.execution_timeout_secs as f64,
        io_timeout: p.io_timeout_secs as f64,
        relative_cwd: p.relative_cwd.clone(),
        caches: p
            .caches
            .iter()
            .map(|c| ManifestCache { name: c.name.clone(), path: c.path.clone(), hint: "-1".to_string() })
            .collect(),
        cipd_input: p.cipd_input.as_ref().map(|ci| ManifestCipdInput {
            server: ci.server.clone(),
            client_package: ci.client_package.as_ref().map(pkg).unwrap_or_default(),
            packages: ci.packages.iter().map(pkg).collect(),
        }),
        cas_input_root: p.cas_input_root.as_ref().map(|c| ManifestCasRef {
            cas_instance: c.cas_instance.clone(),
            digest: c
                .digest
                .as_ref()
                .map(|d| ManifestDigest { hash: d.hash.clone(), size_bytes: d.size_bytes })
                .unwrap_or_default(),
        }),
        outputs: p.outputs.clone(),
        secret_bytes: p.secret_bytes.as_ref().map(|b| encode_b64(b)),
        service_accounts: ServiceAccounts {
            system: ServiceAccount { service_account: "none".to_string() },
            task: ServiceAccount { service_account: task_sa },
        },
        realm: if req.realm.is_empty() {
            None
        } else {
            Some(BTreeMap::from([("name".to_string(), req.realm.clone())]))
        },
        resultdb: None,
        containment,
    })
}
