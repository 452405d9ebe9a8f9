//! The server's conversations: create, restore at startup, run in the
//! background, delete. Each conversation lives in
//! `<state>/conversations/<id hex>/` (`meta.json`, `base_state.json`,
//! `events/`).
//!
//! Threads: a run gets its own thread; request handlers never wait for it.
//! Stored conversations are listed from their small state files and loaded
//! (events included) only when first used, so a server with thousands of
//! stored conversations starts fast and small. A conversation stored as
//! `running` died with its server: it is loaded at startup and comes back as
//! `error` with a `RunInterrupted` event, never stuck in `running`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::secrets::SecretBox;
use crate::agent::confirmation::ConfirmationPolicy;
use crate::agent::spec::AgentSpec;
use crate::agent::Agent;
use crate::conversation::state::ConversationState;
use crate::conversation::{store, title, Conversation};
use crate::llm::{Llm, Secret};
use crate::tool::{Toolbox, ToolboxConfig};
use crate::util::guardian::Guardian;
use crate::util::id::{dashed, normalize_uuid};
use crate::util::process::ProcessGroups;
use crate::wire::{ConversationInfo, Event, ExecutionStatus, Message, StartConversationRequest};
use crate::{Error, Result};

/// The earliest the end-of-run `full_state` goes out after the run was
/// triggered (see [`ConversationService::start_run`]).
pub const END_SNAPSHOT_NOT_BEFORE: Duration = Duration::from_millis(150);

/// What `meta.json` holds besides the state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// Dashed id.
    pub id: String,
    /// Title, once known.
    #[serde(default)]
    pub title: Option<String>,
    /// Creation time (UTC, `Z`).
    pub created_at: String,
    /// Last change (UTC, `Z`).
    pub updated_at: String,
    /// User tags.
    #[serde(default)]
    pub tags: Map<String, Value>,
    /// Whether the first message names the conversation.
    #[serde(default = "yes")]
    pub autotitle: bool,
}

fn yes() -> bool {
    true
}

/// One conversation known to the server.
pub struct Entry {
    /// Dashed id.
    pub id: String,
    dir: PathBuf,
    meta: Mutex<Meta>,
    loaded: Mutex<Option<Arc<Conversation>>>,
    groups: Arc<ProcessGroups>,
    run_active: Arc<AtomicBool>,
    run_thread: Mutex<Option<JoinHandle<()>>>,
    deleted: AtomicBool,
}

/// All conversations of a server.
pub struct ConversationService {
    root: PathBuf,
    secrets: Option<SecretBox>,
    durable: bool,
    no_output_timeout: Duration,
    /// Kills the commands of every conversation should the server crash.
    guardian: Option<Arc<Guardian>>,
    entries: RwLock<BTreeMap<String, Arc<Entry>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ConversationService {
    /// Opens the conversations under `root` (listing them, not loading them).
    /// Credentials are stored sealed with `secrets` when given.
    pub fn open(
        root: &Path,
        durable: bool,
        no_output_timeout: Duration,
        secrets: Option<SecretBox>,
        guardian: Option<Arc<Guardian>>,
    ) -> Result<Arc<Self>> {
        std::fs::create_dir_all(root)
            .map_err(|e| Error::io(format!("creating {}", root.display()), e))?;
        let service = Arc::new(ConversationService {
            root: root.to_path_buf(),
            secrets,
            durable,
            no_output_timeout,
            guardian,
            entries: RwLock::new(BTreeMap::new()),
        });
        let mut interrupted = Vec::new();
        let dirs = std::fs::read_dir(root)
            .map_err(|e| Error::io(format!("listing {}", root.display()), e))?;
        for dir in dirs.flatten() {
            let name = dir.file_name().to_string_lossy().into_owned();
            let Some(hex) = normalize_uuid(&name) else {
                continue;
            };
            let path = dir.path();
            let state = match store::load_state(&path) {
                Ok(s) => s,
                Err(e) => {
                    log::warn!("skipping stored conversation {name}: {e}");
                    continue;
                }
            };
            let meta = read_meta(&path).unwrap_or_else(|| Meta {
                id: dashed(&hex),
                title: None,
                created_at: crate::util::time::now_utc(),
                updated_at: crate::util::time::now_utc(),
                tags: Map::new(),
                autotitle: false,
            });
            if state.execution_status == ExecutionStatus::Running {
                interrupted.push(hex.clone());
            }
            service.insert(Entry::new(dashed(&hex), path, meta, &service.guardian));
        }
        for hex in interrupted {
            if let Some(entry) = service.get(&hex) {
                if let Err(e) = service.conversation(&entry) {
                    log::warn!("could not restore interrupted conversation {hex}: {e}");
                }
            }
        }
        log::info!("{} stored conversation(s) found", service.len());
        Ok(service)
    }

    fn insert(&self, entry: Entry) -> Arc<Entry> {
        let entry = Arc::new(entry);
        if let Ok(mut map) = self.entries.write() {
            map.insert(
                normalize_uuid(&entry.id).unwrap_or_default(),
                Arc::clone(&entry),
            );
        }
        entry
    }

    /// How many conversations there are.
    pub fn len(&self) -> usize {
        self.entries.read().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The conversation with this id (any UUID spelling).
    pub fn get(&self, id: &str) -> Option<Arc<Entry>> {
        let hex = normalize_uuid(id)?;
        self.entries.read().ok()?.get(&hex).cloned()
    }

    /// All conversations.
    pub fn all(&self) -> Vec<Arc<Entry>> {
        self.entries
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The loaded conversation of `entry`, loading it from disk on first use.
    pub fn conversation(&self, entry: &Entry) -> Result<Arc<Conversation>> {
        let mut loaded = lock(&entry.loaded);
        if let Some(c) = loaded.as_ref() {
            return Ok(Arc::clone(c));
        }
        let conv = Conversation::open(&entry.dir, self.durable)?;
        let mut state = conv.state();
        let masked = state
            .agent
            .llm
            .api_key
            .as_ref()
            .is_some_and(Secret::is_unusable);
        if masked {
            match self.unseal_api_key(&entry.dir) {
                Some(key) => state.agent.llm.api_key = Some(key),
                None => log::warn!(
                    "conversation {}: no usable stored LLM key (no OH_SECRET_KEY, or it changed); it cannot run until recreated",
                    entry.id
                ),
            }
        }
        let usable = !state
            .agent
            .llm
            .api_key
            .as_ref()
            .is_some_and(Secret::is_unusable);
        if usable || state.agent.llm.provider() == "scripted" {
            self.install_agent(&conv, &state, entry)?;
        }
        *loaded = Some(Arc::clone(&conv));
        Ok(conv)
    }

    fn install_agent(
        &self,
        conv: &Conversation,
        state: &ConversationState,
        entry: &Entry,
    ) -> Result<()> {
        let llm = Llm::new(state.agent.llm.clone());
        if let Some(m) = state.stats.usage_to_metrics.get(&state.agent.llm.usage_id) {
            llm.restore_metrics(m.clone());
        }
        let toolbox = Toolbox::new(
            ToolboxConfig {
                working_dir: PathBuf::from(state.working_dir()),
                state_dir: Some(entry.dir.clone()),
                no_change_timeout: self.no_output_timeout,
            },
            Arc::clone(&entry.groups),
        );
        conv.set_agent(Agent::new(llm, toolbox));
        Ok(())
    }

    /// Creates a conversation, or returns the existing one with the requested
    /// id (`false` = not new).
    pub fn create(&self, req: StartConversationRequest) -> Result<(Arc<Entry>, bool)> {
        let hex = match &req.conversation_id {
            Some(id) => normalize_uuid(id).ok_or_else(|| {
                Error::InvalidInput(format!("conversation_id is not a UUID: {id}"))
            })?,
            None => crate::util::id::uuid4_hex(),
        };
        if let Some(existing) = self.get(&hex) {
            return Ok((existing, false));
        }
        let agent: AgentSpec = serde_json::from_value(req.agent.clone())
            .map_err(|e| Error::InvalidInput(format!("invalid agent: {e}")))?;
        let policy: ConfirmationPolicy = match &req.confirmation_policy {
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| Error::InvalidInput(format!("invalid confirmation_policy: {e}")))?,
            None => ConfirmationPolicy::NeverConfirm,
        };
        let working_dir = req
            .workspace
            .get("working_dir")
            .and_then(Value::as_str)
            .unwrap_or("workspace/project")
            .to_string();
        let id = dashed(&hex);
        let dir = self.root.join(&hex);
        let mut state = ConversationState::new(id.clone(), agent, &working_dir);
        state.max_iterations = req.max_iterations.max(1);
        state.stuck_detection = req.stuck_detection;
        state.confirmation_policy = policy;
        state.persistence_dir = Some(dir.to_string_lossy().into_owned());
        if let Some(tags) = req.extra.get("tags").and_then(Value::as_object) {
            state.tags = tags.clone();
        }
        let now = crate::util::time::now_utc();
        let meta = Meta {
            id: id.clone(),
            title: None,
            created_at: now.clone(),
            updated_at: now,
            tags: state.tags.clone(),
            autotitle: req
                .extra
                .get("autotitle")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        };
        write_meta(&dir, &meta, self.durable)?;
        if let Some(key) = state
            .agent
            .llm
            .api_key
            .as_ref()
            .filter(|k| !k.is_unusable())
        {
            self.seal_credential(&dir, "llm_api_key", key.expose())?;
        }
        let conv = Conversation::create(state.clone(), Some(dir.clone()), self.durable)?;
        let entry = self.insert(Entry::new(id, dir, meta, &self.guardian));
        self.install_agent(&conv, &state, &entry)?;
        *lock(&entry.loaded) = Some(Arc::clone(&conv));
        if let Some(first) = req.initial_message {
            let message = Message {
                role: first.role,
                content: first.content,
                ..Message::text(crate::wire::Role::User, "")
            };
            self.send_message(&entry, message, first.run)?;
        }
        Ok((entry, true))
    }

    /// Adds a user message, names the conversation from its first message
    /// (in the background), and starts a run when asked.
    pub fn send_message(
        &self,
        entry: &Arc<Entry>,
        message: Message,
        run: bool,
    ) -> Result<Arc<Event>> {
        let conv = self.conversation(entry)?;
        let first = conv.state().last_user_message_id.is_none();
        let event = conv.send_message(message)?;
        entry.touch(self.durable);
        if first && lock(&entry.meta).autotitle && lock(&entry.meta).title.is_none() {
            self.autotitle(entry, &conv);
        }
        if run {
            match self.start_run(entry) {
                Ok(_) => {}
                Err(e) => log::warn!("message stored but the run could not start: {e}"),
            }
        }
        Ok(event)
    }

    fn autotitle(&self, entry: &Arc<Entry>, conv: &Arc<Conversation>) {
        let llm = conv.agent_llm();
        let (entry, conv, durable) = (Arc::clone(entry), Arc::clone(conv), self.durable);
        let spawned = std::thread::Builder::new()
            .name("autotitle".into())
            .spawn(move || {
                let Some(first) = title::first_user_text(&conv.events()) else {
                    return;
                };
                let title = title::generate(&first, 50, llm.as_ref());
                if let Some(llm) = &llm {
                    let _ = crate::agent::StepHost::record_metrics(
                        conv.as_ref(),
                        &llm.config().usage_id,
                        llm.metrics(),
                    );
                }
                {
                    let mut meta = lock(&entry.meta);
                    if meta.title.is_none() {
                        meta.title = Some(title);
                    }
                }
                entry.touch(durable);
            });
        if let Err(e) = spawned {
            log::warn!("cannot start title generation: {e}");
        }
    }

    /// Starts a run in the background; `Ok(false)` if one is already running.
    pub fn start_run(&self, entry: &Arc<Entry>) -> Result<bool> {
        let conv = self.conversation(entry)?;
        if !conv.has_agent() {
            return Err(Error::InvalidInput(
                "this conversation's LLM API key is not available: it was not persisted because the server has \
                 no OH_SECRET_KEY (or session API key) to encrypt it with. Set OH_SECRET_KEY, or create the \
                 conversation again with its agent settings."
                    .into(),
            ));
        }
        if entry.run_active.swap(true, Ordering::SeqCst) {
            return Ok(false);
        }
        let active = Arc::clone(&entry.run_active);
        let hex = normalize_uuid(&entry.id).unwrap_or_default();
        let triggered = Instant::now();
        let handle = std::thread::Builder::new()
            .name(format!("run-{}", &hex[..8.min(hex.len())]))
            .spawn(move || {
                if let Err(e) = conv.run() {
                    log::warn!("run of conversation {} ended with: {e}", conv.id());
                }
                // The end-of-run snapshot clients wait for. The reference
                // client only listens for it once the answer to its POST /run
                // has arrived; a run faster than that round trip would end
                // unnoticed, so the snapshot is never sent sooner.
                let wait = END_SNAPSHOT_NOT_BEFORE.saturating_sub(triggered.elapsed());
                std::thread::sleep(wait);
                active.store(false, Ordering::SeqCst);
                conv.publish_transient(conv.full_state_event());
            });
        match handle {
            Ok(h) => {
                if let Some(old) = lock(&entry.run_thread).replace(h) {
                    let _ = old.join();
                }
                Ok(true)
            }
            Err(e) => {
                entry.run_active.store(false, Ordering::SeqCst);
                Err(Error::io("spawning a run thread", e))
            }
        }
    }

    /// Stops a run: pause after the current step, kill running commands.
    fn stop_run(&self, entry: &Entry) {
        if let Some(conv) = lock(&entry.loaded).clone() {
            let _ = conv.pause();
        }
        entry.groups.kill_all();
        let handle = lock(&entry.run_thread).take();
        if let Some(h) = handle {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !h.is_finished() && Instant::now() < deadline {
                entry.groups.kill_all();
                std::thread::sleep(Duration::from_millis(20));
            }
            if h.is_finished() {
                let _ = h.join();
            } else {
                log::warn!("run of {} did not stop within 10 s", entry.id);
            }
        }
    }

    /// Deletes a conversation: stops its run and shell, removes its files.
    pub fn delete(&self, id: &str) -> bool {
        let Some(hex) = normalize_uuid(id) else {
            return false;
        };
        let entry = match self.entries.write() {
            Ok(mut map) => map.remove(&hex),
            Err(_) => None,
        };
        let Some(entry) = entry else { return false };
        entry.deleted.store(true, Ordering::SeqCst);
        self.stop_run(&entry);
        if let Some(conv) = lock(&entry.loaded).take() {
            conv.close();
        }
        entry.groups.kill_all();
        if let Err(e) = std::fs::remove_dir_all(&entry.dir) {
            log::warn!("could not remove {}: {e}", entry.dir.display());
        }
        true
    }

    /// Stops every run (they come back `paused`) and every shell.
    pub fn shutdown(&self) {
        for entry in self.all() {
            if entry.run_active.load(Ordering::SeqCst) {
                self.stop_run(&entry);
            }
            if let Some(conv) = lock(&entry.loaded).as_ref() {
                conv.close();
            }
            entry.groups.kill_all();
        }
    }

    /// The `ConversationInfo` of a conversation (from disk if not loaded).
    pub fn info(&self, entry: &Entry) -> Result<ConversationInfo> {
        let state = match lock(&entry.loaded).as_ref() {
            Some(c) => c.state(),
            None => store::load_state(&entry.dir)?,
        };
        let meta = lock(&entry.meta).clone();
        Ok(build_info(&state, &meta))
    }

    /// Stores a credential of a conversation, sealed; without a secret box it
    /// is not stored at all.
    pub fn seal_credential(&self, dir: &Path, name: &str, value: &str) -> Result<()> {
        let Some(sealer) = &self.secrets else {
            return Ok(());
        };
        let Some(sealed) = sealer.seal(value) else {
            return Err(Error::InvalidInput("could not encrypt a credential".into()));
        };
        let path = dir.join("secrets.json");
        let mut all: Map<String, Value> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        all.insert(name.to_string(), Value::String(sealed));
        let data =
            serde_json::to_vec_pretty(&all).map_err(|e| Error::json("sealed credentials", e))?;
        crate::util::fs::write_atomic(&path, &data, self.durable)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    /// Stores the named secrets of a conversation, sealed.
    pub fn store_secrets(&self, entry: &Entry, secrets: &Map<String, Value>) -> Result<()> {
        for (name, value) in secrets {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other
                    .get("value")
                    .and_then(Value::as_str)
                    .map(String::from)
                    .unwrap_or_else(|| other.to_string()),
            };
            self.seal_credential(&entry.dir, &format!("secret:{name}"), &text)?;
        }
        Ok(())
    }

    fn unseal_api_key(&self, dir: &Path) -> Option<Secret> {
        let sealer = self.secrets.as_ref()?;
        let data = std::fs::read(dir.join("secrets.json")).ok()?;
        let all: Map<String, Value> = serde_json::from_slice(&data).ok()?;
        let sealed = all.get("llm_api_key")?.as_str()?;
        sealer.open(sealed).map(Secret::new)
    }

    /// Changes the title and tags.
    pub fn update(&self, entry: &Entry, title: Option<String>, tags: Option<Map<String, Value>>) {
        {
            let mut meta = lock(&entry.meta);
            if let Some(t) = title {
                meta.title = Some(t);
            }
            if let Some(t) = tags {
                meta.tags = t;
            }
        }
        entry.touch(self.durable);
    }
}

impl Entry {
    fn new(id: String, dir: PathBuf, meta: Meta, guardian: &Option<Arc<Guardian>>) -> Self {
        Entry {
            id,
            dir,
            meta: Mutex::new(meta),
            loaded: Mutex::new(None),
            groups: Arc::new(ProcessGroups::guarded_by(guardian.clone())),
            run_active: Arc::new(AtomicBool::new(false)),
            run_thread: Mutex::new(None),
            deleted: AtomicBool::new(false),
        }
    }

    /// Whether a run is in progress.
    pub fn is_running(&self) -> bool {
        self.run_active.load(Ordering::SeqCst)
    }

    /// The conversation, if it is loaded.
    pub fn loaded(&self) -> Option<Arc<Conversation>> {
        lock(&self.loaded).clone()
    }

    /// The title, if known.
    pub fn title(&self) -> Option<String> {
        lock(&self.meta).title.clone()
    }

    /// Creation time.
    pub fn created_at(&self) -> String {
        lock(&self.meta).created_at.clone()
    }

    fn touch(&self, durable: bool) {
        if self.deleted.load(Ordering::SeqCst) {
            return;
        }
        let meta = {
            let mut m = lock(&self.meta);
            m.updated_at = crate::util::time::now_utc();
            m.clone()
        };
        if let Err(e) = write_meta(&self.dir, &meta, durable) {
            log::warn!("could not save meta of {}: {e}", self.id);
        }
    }
}

fn read_meta(dir: &Path) -> Option<Meta> {
    let data = std::fs::read(dir.join("meta.json")).ok()?;
    serde_json::from_slice(&data).ok()
}

fn write_meta(dir: &Path, meta: &Meta, durable: bool) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let data = serde_json::to_vec_pretty(meta).map_err(|e| Error::json("conversation meta", e))?;
    crate::util::fs::write_atomic(&dir.join("meta.json"), &data, durable)
        .map_err(|e| Error::io(format!("writing {}/meta.json", dir.display()), e))
}

/// A `ConversationInfo` in the reference's shape.
pub fn build_info(state: &ConversationState, meta: &Meta) -> ConversationInfo {
    let mut extra = Map::new();
    for (k, v) in [
        ("security_analyzer", Value::Null),
        (
            "activated_knowledge_skills",
            json!(state.activated_knowledge_skills),
        ),
        ("invoked_skills", json!([])),
        (
            "blocked_actions",
            Value::Object(state.blocked_actions.clone()),
        ),
        (
            "blocked_messages",
            Value::Object(state.blocked_messages.clone()),
        ),
        ("last_user_message_id", json!(state.last_user_message_id)),
        ("leaf_event_id", json!(state.leaf_event_id)),
        ("secret_registry", state.secret_registry.clone()),
        ("agent_state", Value::Object(state.agent_state.clone())),
        ("hook_config", Value::Null),
        ("metrics", Value::Null),
        ("forked_from_conversation_id", Value::Null),
        ("forked_from_event_id", Value::Null),
        ("parent_conversation_id", Value::Null),
        ("sub_conversation_ids", json!([])),
        ("tags", Value::Object(meta.tags.clone())),
        ("current_model_id", Value::Null),
        ("available_models", json!([])),
        ("supports_runtime_model_switch", json!(false)),
        ("launched_agent_profile", Value::Null),
        ("client_tools", json!([])),
        ("tool_module_qualnames", json!({})),
        ("runtime_info", Value::Null),
    ] {
        extra.insert(k.to_string(), v);
    }
    ConversationInfo {
        id: state.id.clone(),
        workspace: state.workspace.clone(),
        persistence_dir: state.persistence_dir.clone(),
        max_iterations: state.max_iterations,
        stuck_detection: state.stuck_detection,
        execution_status: state.execution_status,
        confirmation_policy: serde_json::to_value(&state.confirmation_policy).unwrap_or_default(),
        stats: serde_json::to_value(state.stats.snapshot()).unwrap_or_default(),
        title: meta.title.clone(),
        created_at: Some(meta.created_at.clone()),
        updated_at: Some(meta.updated_at.clone()),
        agent: serde_json::to_value(&state.agent).unwrap_or_default(),
        extra,
    }
}
