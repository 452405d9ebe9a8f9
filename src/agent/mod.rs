//! The agent: one [`Agent::step`] asks the model what to do next (or runs
//! actions the user just approved), turns its answer into events, checks the
//! confirmation policy and runs the tools. The run loop around it lives in
//! [`crate::conversation`].

pub mod confirmation;
pub mod messages;
pub mod prompt;
pub mod spec;
pub mod stuck;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::llm::{CompletionRequest, Llm, LlmError, Metrics, ToolSpec};
use crate::tool::{default_specs, definition_json, is_read_only, parse_action, Toolbox};
use crate::wire::{
    Action, ActionEvent, AgentErrorEvent, ErrorClassification, Event, EventMeta, ExecutionStatus,
    Message, MessageEvent, MessageToolCall, ObservationEvent, Role, SecurityRisk, Source,
    SystemPromptEvent, TextContent,
};
use confirmation::ConfirmationPolicy;

/// What a step needs from the conversation it runs in.
pub trait StepHost {
    /// The events so far, oldest first.
    fn events(&self) -> Vec<Arc<Event>>;
    /// Stores and publishes an event.
    fn emit(&self, event: Event) -> crate::Result<Arc<Event>>;
    /// Changes the status (publishing the change).
    fn set_status(&self, status: ExecutionStatus) -> crate::Result<()>;
    /// The current status.
    fn status(&self) -> ExecutionStatus;
    /// The confirmation policy.
    fn confirmation_policy(&self) -> ConfirmationPolicy;
    /// Records an LLM's metrics after a call (publishing a `stats` update).
    fn record_metrics(&self, usage_id: &str, metrics: Metrics) -> crate::Result<()>;
}

/// Why a step failed.
#[derive(Debug)]
pub enum StepError {
    /// The model could not be reached or answered nonsense.
    Llm(LlmError),
    /// Storing an event failed.
    Store(crate::Error),
}

impl From<crate::Error> for StepError {
    fn from(e: crate::Error) -> Self {
        StepError::Store(e)
    }
}

/// The model plus the tools of one conversation.
pub struct Agent {
    llm: Llm,
    toolbox: Toolbox,
    specs: Arc<Vec<ToolSpec>>,
}

fn agent_outcome() -> ErrorClassification {
    ErrorClassification::new("agent_action", true, "retry")
}

impl Agent {
    /// An agent with the default tools.
    pub fn new(llm: Llm, toolbox: Toolbox) -> Self {
        Agent {
            llm,
            toolbox,
            specs: default_specs(),
        }
    }

    /// The model.
    pub fn llm(&self) -> &Llm {
        &self.llm
    }

    /// Stops the agent's shell.
    pub fn close(&mut self) {
        self.toolbox.close();
    }

    /// The `SystemPromptEvent` that opens a conversation.
    pub fn system_prompt_event(&self, working_dir: &Path) -> Event {
        Self::system_prompt_for(working_dir)
    }

    /// The `SystemPromptEvent` for an agent with the default tools working in
    /// `working_dir`.
    pub fn system_prompt_for(working_dir: &Path) -> Event {
        Event::SystemPrompt(SystemPromptEvent {
            meta: EventMeta::new(Source::Agent),
            system_prompt: TextContent::new(prompt::system_prompt(working_dir)),
            tools: default_specs().iter().map(definition_json).collect(),
            dynamic_context: None,
            extra: Map::new(),
        })
    }

    /// One step: run approved actions, or ask the model and act on its answer.
    pub fn step(&mut self, host: &dyn StepHost) -> Result<(), StepError> {
        let events = host.events();
        let pending = unmatched_actions(&events);
        if !pending.is_empty() {
            return self.execute(host, &pending);
        }
        let request = CompletionRequest {
            messages: messages::to_messages(&events),
            tools: self.specs.as_ref().clone(),
        };
        let completion = self.llm.complete(&request).map_err(StepError::Llm)?;
        host.record_metrics(&self.llm.config().usage_id, self.llm.metrics())?;
        let message = completion.message;
        let calls = message.tool_calls.clone().unwrap_or_default();
        if calls.is_empty() {
            let has_text = !message.joined_text().trim().is_empty();
            host.emit(agent_message(message, &completion.response_id))?;
            if has_text {
                host.set_status(ExecutionStatus::Finished)?;
            } else {
                host.emit(environment_note(
                    "Your last answer had neither a tool call nor a message. Use a tool to continue, or `finish` when done.",
                ))?;
            }
            return Ok(());
        }
        let mut actions = Vec::new();
        for (i, call) in calls.iter().enumerate() {
            let thought = if i == 0 {
                message
                    .content
                    .iter()
                    .filter_map(|c| c.as_text())
                    .map(TextContent::new)
                    .collect()
            } else {
                Vec::new()
            };
            match self.action_event(call, thought, &completion.response_id, i == 0, &message) {
                (ev, None) => actions.push(host.emit(Event::Action(ev))?),
                (ev, Some(error)) => {
                    let action = host.emit(Event::Action(ev))?;
                    let (tool_name, tool_call_id) = match action.as_ref() {
                        Event::Action(a) => (a.tool_name.clone(), a.tool_call_id.clone()),
                        _ => (call.name.clone(), call.id.clone()),
                    };
                    host.emit(Event::AgentError(AgentErrorEvent {
                        meta: EventMeta::new(Source::Agent),
                        tool_name,
                        tool_call_id,
                        error,
                        classification: Some(agent_outcome()),
                        extra: Map::new(),
                    }))?;
                }
            }
        }
        if actions.is_empty() {
            return Ok(());
        }
        let policy = host.confirmation_policy();
        let only_builtins = actions.len() == 1
            && matches!(actions[0].as_ref(), Event::Action(a) if is_read_only(&a.tool_name));
        let needs_approval = !only_builtins
            && actions.iter().any(|e| match e.as_ref() {
                Event::Action(a) => policy.should_confirm(a.security_risk),
                _ => false,
            });
        if needs_approval {
            host.set_status(ExecutionStatus::WaitingForConfirmation)?;
            return Ok(());
        }
        self.execute(host, &actions)
    }

    fn action_event(
        &self,
        call: &MessageToolCall,
        thought: Vec<TextContent>,
        response_id: &str,
        first: bool,
        message: &Message,
    ) -> (ActionEvent, Option<String>) {
        let mut event = ActionEvent {
            meta: EventMeta::new(Source::Agent),
            thought,
            reasoning_content: if first {
                message.reasoning_content.clone()
            } else {
                None
            },
            thinking_blocks: Vec::new(),
            responses_reasoning_item: None,
            action: None,
            tool_name: call.name.clone(),
            tool_call_id: call.id.clone(),
            tool_call: call.clone(),
            llm_response_id: response_id.to_string(),
            security_risk: SecurityRisk::Unknown,
            summary: None,
            extra: Map::new(),
        };
        let mut args: Map<String, Value> = match serde_json::from_str::<Value>(&call.arguments) {
            Ok(Value::Object(m)) => m,
            Ok(_) => Map::new(),
            Err(e) => {
                let error = format!(
                    "Error validating tool '{}': Arguments: unparseable JSON ({e})",
                    call.name
                );
                return (event, Some(error));
            }
        };
        args.retain(|_, v| !v.is_null());
        let risk = args.remove("security_risk");
        let summary = args.remove("summary");
        event.summary = Some(match summary {
            Some(Value::String(s)) => s,
            _ => format!("{}: {}", call.name, Value::Object(args.clone())),
        });
        if let Some(r) = risk {
            match serde_json::from_value::<SecurityRisk>(r.clone()) {
                Ok(r) if !is_read_only(&call.name) => event.security_risk = r,
                Ok(_) => {}
                Err(_) => {
                    let error = format!(
                        "Error validating tool '{}': invalid security_risk {r}",
                        call.name
                    );
                    return (event, Some(error));
                }
            }
        }
        match parse_action(&call.name, args) {
            Ok(action) => {
                event.action = Some(action);
                (event, None)
            }
            Err(e) => (event, Some(e)),
        }
    }

    /// Runs actions in order, stopping after a `finish`.
    fn execute(&mut self, host: &dyn StepHost, actions: &[Arc<Event>]) -> Result<(), StepError> {
        let mut finished = false;
        for event in actions {
            let Event::Action(a) = event.as_ref() else {
                continue;
            };
            let Some(action) = &a.action else { continue };
            match self.toolbox.execute(action) {
                Ok(observation) => {
                    host.emit(Event::Observation(ObservationEvent {
                        meta: EventMeta {
                            parent_id: Some(a.meta.id.clone()),
                            ..EventMeta::new(Source::Environment)
                        },
                        tool_name: a.tool_name.clone(),
                        tool_call_id: a.tool_call_id.clone(),
                        observation,
                        action_id: a.meta.id.clone(),
                        extended_content: Vec::new(),
                        extra: Map::new(),
                    }))?;
                }
                Err(error) => {
                    host.emit(Event::AgentError(AgentErrorEvent {
                        meta: EventMeta::new(Source::Agent),
                        tool_name: a.tool_name.clone(),
                        tool_call_id: a.tool_call_id.clone(),
                        error,
                        classification: Some(agent_outcome()),
                        extra: Map::new(),
                    }))?;
                }
            }
            if matches!(action, Action::Finish(_)) {
                finished = true;
                break;
            }
        }
        if finished {
            host.set_status(ExecutionStatus::Finished)?;
        }
        Ok(())
    }
}

fn agent_message(message: Message, response_id: &str) -> Event {
    Event::Message(MessageEvent {
        meta: EventMeta::new(Source::Agent),
        llm_message: message,
        llm_response_id: Some(response_id.to_string()),
        activated_skills: Vec::new(),
        extended_content: Vec::new(),
        sender: None,
        extra: Map::new(),
    })
}

/// A user-role message from the environment (nudges, corrections).
pub fn environment_note(text: &str) -> Event {
    Event::Message(MessageEvent {
        meta: EventMeta::new(Source::Environment),
        llm_message: Message::text(Role::User, text),
        llm_response_id: None,
        activated_skills: Vec::new(),
        extended_content: Vec::new(),
        sender: None,
        extra: Map::new(),
    })
}

/// Actions with no result yet (no observation, rejection or error), after the
/// latest user message: the ones waiting for approval.
pub fn unmatched_actions(events: &[Arc<Event>]) -> Vec<Arc<Event>> {
    let mut answered: HashSet<&str> = HashSet::new();
    for e in events {
        match e.as_ref() {
            Event::Observation(o) => {
                answered.insert(&o.tool_call_id);
            }
            Event::UserReject(r) => {
                answered.insert(&r.tool_call_id);
            }
            Event::AgentError(a) => {
                answered.insert(&a.tool_call_id);
            }
            _ => {}
        }
    }
    let start = events
        .iter()
        .rposition(|e| matches!(e.as_ref(), Event::Message(m) if m.meta.source == Source::User))
        .unwrap_or(0);
    events[start..]
        .iter()
        .filter(|e| matches!(e.as_ref(), Event::Action(a) if a.action.is_some() && !answered.contains(a.tool_call_id.as_str())))
        .cloned()
        .collect()
}
