//! The async job table: what `queryAsyncJobResult` and `listAsyncJobs` report.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::api_error::ApiError;
use super::config::ApiUser;
use super::state::State;
use crate::dates;

/// Completed jobs beyond this many are forgotten, oldest first.
const KEEP_JOBS: usize = 10_000;

#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    /// The Java command class, as CloudStack reports it in `cmd`.
    pub cmd: &'static str,
    pub instance_type: &'static str,
    pub instance_id: String,
    pub account: String,
    pub accountid: String,
    pub userid: String,
    pub status: i64,
    pub resultcode: i64,
    pub result: Option<Value>,
    pub created: SystemTime,
    pub completed: Option<SystemTime>,
}

impl State {
    /// Starts a pending job on a VM; returns its id.
    pub fn create_job(&mut self, user: &ApiUser, cmd: &'static str, vm_id: &str) -> String {
        if self.jobs.len() >= KEEP_JOBS
            && let Some(oldest_done) = self.jobs.iter().position(|job| job.status != 0)
        {
            self.jobs.remove(oldest_done);
        }
        let id = super::ids::random();
        self.jobs.push(Job {
            id: id.clone(),
            cmd,
            instance_type: "VirtualMachine",
            instance_id: vm_id.to_string(),
            account: user.account.clone(),
            accountid: user.accountid.clone(),
            userid: user.id.clone(),
            status: 0,
            resultcode: 0,
            result: None,
            created: SystemTime::now(),
            completed: None,
        });
        id
    }

    pub fn job(&self, id: &str) -> Option<&Job> {
        self.jobs.iter().find(|job| job.id == id)
    }

    /// Finishes job `id` with `result` (`{"virtualmachine": {...}}`) and clears it from its VM.
    pub fn succeed_job(&mut self, id: &str, result: Value) {
        self.finish_job(id, 1, 0, result);
    }

    /// Fails job `id`: `jobresultcode` 530 as CloudStack reports, the real code inside.
    pub fn fail_job(&mut self, id: &str, error: &ApiError) {
        self.finish_job(id, 2, 530, error.body());
    }

    fn finish_job(&mut self, id: &str, status: i64, resultcode: i64, result: Value) {
        if let Some(job) = self.jobs.iter_mut().find(|job| job.id == id) {
            job.status = status;
            job.resultcode = resultcode;
            job.result = Some(result);
            job.completed = Some(SystemTime::now());
        }
        for vm in &mut self.vms {
            if vm.job.as_deref() == Some(id) {
                vm.job = None;
            }
        }
    }
}

/// The job object of `queryAsyncJobResult` and `listAsyncJobs`.
pub fn render(job: &Job) -> Value {
    let mut out = json!({
        "jobid": job.id,
        "accountid": job.accountid,
        "userid": job.userid,
        "cmd": job.cmd,
        "jobstatus": job.status,
        "jobprocstatus": 0,
        "jobresultcode": job.resultcode,
        "jobinstancetype": job.instance_type,
        "jobinstanceid": job.instance_id,
        "created": dates::format(job.created),
        "account": job.account,
        "domainid": super::render::DOMAIN_ID,
        "domainpath": "ROOT",
    });
    if let Some(result) = &job.result {
        out["jobresulttype"] = json!("object");
        out["jobresult"] = result.clone();
    }
    if let Some(completed) = job.completed {
        out["completed"] = json!(dates::format(completed));
    }
    out
}
