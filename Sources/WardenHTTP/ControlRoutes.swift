import Foundation
import Hummingbird
import WardenCore

/// The control API under `/v1/` (described by `docs/control-api.yaml`).
struct ControlRoutes {
    let backend: ControlBackend

    func register(on router: Router<BasicRequestContext>) {
        let v1 = router.group("v1")
        v1.get("status") { _, _ in try await status() }
        v1.get("loops") { _, _ in try json(.ok, await backend.supervisor.statuses().map(LoopView.init)) }
        v1.post("loops/:name/run") { request, context in
            let loop = try loop(context)
            // A paused loop acts on nothing, a pass run by hand included (resume it first).
            guard !loop.isPaused else { throw APIError.conflict("the \(loop.name) loop is paused: resume it to run a pass") }
            if request.uri.queryParameters.get("wait") == "true" {
                let outcome = await loop.runPass()
                return try json(.ok, ["loop": loop.name, "result": outcome.resultLabel, "summary": outcome.report?.summary ?? "", "error": failureText(outcome)])
            }
            if let cluster = backend.clusterControl {
                // Every node runs a pass, each on the shards it owns.
                do { try await cluster.runEverywhere(loop.name) } catch { throw APIError.unavailable("cannot reach the other nodes: \(error)") }
            }
            loop.runNow()
            return try json(.accepted, ["loop": loop.name, "status": "triggered"])
        }
        v1.post("loops/:name/pause") { _, context in
            let loop = try loop(context)
            guard loop.name != LoopName.jobs.rawValue else {
                throw APIError.conflict("the jobs loop cannot be paused: it closes the journal's calls and drives retries of failed sub-jobs")
            }
            if let cluster = backend.clusterControl {
                do { try await cluster.setLoopPaused(loop.name, paused: true) } catch { throw APIError.unavailable("cannot record the pause for the cluster: \(error)") }
            }
            await loop.pause()
            return try json(.ok, ["loop": loop.name, "status": "paused"])
        }
        v1.post("loops/:name/resume") { _, context in
            let loop = try loop(context)
            if let cluster = backend.clusterControl {
                do { try await cluster.setLoopPaused(loop.name, paused: false) } catch { throw APIError.unavailable("cannot record the resume for the cluster: \(error)") }
            }
            await loop.resume()
            return try json(.ok, ["loop": loop.name, "status": "resumed"])
        }
        v1.get("cluster") { _, _ in
            do {
                return try json(.ok, try await backend.cluster.clusterStatus())
            } catch {
                throw APIError.unavailable("the cluster's state cannot be read: \(error)")
            }
        }
        v1.get("quotas") { _, _ in try json(.ok, backend.quota.snapshot()) }
        v1.get("flavors") { request, _ in
            let query = request.uri.queryParameters
            var states = try await backend.flavors.states(region: query.get("region"), az: query.get("az"))
            if query.get("sold_out") == "true" { states = states.filter(\.soldOut) }
            return try json(.ok, states)
        }
        v1.get("flavors/launchable") { request, _ in
            let query = request.uri.queryParameters
            guard let az = query.get("az") else { throw APIError.badRequest("az is required") }
            let region = query.get("region") ?? backend.context.projects.first?.region ?? ""
            return try json(.ok, try await backend.flavors.launchable(region: region, az: az))
        }
        v1.get("stuck") { _, _ in try json(.ok, backend.stuck.snapshot()) }
        v1.post("jobs") { request, context in
            let registration = try await request.decode(as: JobRegistration.self, context: context)
            guard backend.context.project(named: registration.project) != nil else { throw APIError.notFound("no project named \(registration.project)") }
            guard !registration.jobId.isEmpty, registration.jobId.count <= 64 else { throw APIError.badRequest("jobId must be 1-64 characters") }
            let name = backend.context.project(named: registration.project)?.name ?? registration.project
            try await backend.stuck.registerExternalJob(project: name, jobId: registration.jobId, now: backend.context.clock.now())
            return try json(.created, ["project": name, "jobId": registration.jobId, "status": "watched"])
        }
        v1.get("schedules") { _, _ in try schedules() }
        v1.get("plan") { request, _ in
            let hours = try number(request, "hours", default: 24.0)
            guard hours > 0, hours <= 24 * 31 else { throw APIError.badRequest("hours must be between 0 and 744") }
            let steps = try await backend.scheduler.preview(now: backend.context.clock.now(), hours: hours)
            let names = backend.scheduler.knownServerNames()
            let risks = backend.scheduler.startsAtRisk()
            func atRisk(_ batch: AutoStopPlan.Batch) -> [String: String] {
                guard batch.action == .start else { return [:] }
                let ids = Set(batch.serverIds)
                var found: [String: String] = [:]
                for risk in risks where risk.project == batch.project && risk.boundary == batch.boundary && ids.contains(risk.serverId) {
                    found[risk.serverId] = found[risk.serverId].map { "\($0); \(risk.detail)" } ?? risk.detail
                }
                return found
            }
            return try json(
                .ok,
                steps.map { step in
                    PlanStepView(
                        at: step.at,
                        batches: step.batches.map { BatchView($0, serverNames: $0.serverIds.map { names[$0] ?? "" }, atRisk: atRisk($0)) },
                        skipped: step.skips.map { SkipView(project: $0.project, serverId: $0.serverId, schedule: $0.schedule, reason: $0.reason, detail: $0.detail) })
                })
        }
        // Read-only and cheap (what the loops hold; no call to the cloud): no token needed.
        v1.post("preflight") { request, context in
            let question = try await request.decode(as: LaunchPreflight.Request.self, context: context)
            guard let project = backend.context.project(named: question.project) else { throw APIError.notFound("no project named \(question.project)") }
            guard (1...1000).contains(question.count) else { throw APIError.badRequest("count must be between 1 and 1000") }
            guard (question.hours ?? 8) >= 0, (question.hours ?? 8) <= 744 else { throw APIError.badRequest("hours must be between 0 and 744") }
            let now = backend.context.clock.now()
            let catalogue = backend.flavors.catalogue(region: project.region)
            var asked = question
            asked.project = project.name
            let answer = LaunchPreflight.answer(
                asked, catalogue: catalogue.flavors, zones: catalogue.zones,
                saleStates: try await backend.context.store.saleStates(region: project.region),
                quota: backend.quota.snapshot().first { $0.project == project.name },
                scheduledStarts: backend.scheduler.scheduledStarts(project: project.name, now: now, horizon: now.addingTimeInterval((question.hours ?? 8) * 3600)),
                now: now)
            return try json(.ok, answer)
        }
        v1.get("savings") { request, _ in
            let query = request.uri.queryParameters
            let now = backend.context.clock.now()
            guard let sinceText = query.get("since") else { throw APIError.badRequest("since is required (ISO 8601, e.g. 2026-11-23T00:00:00Z)") }
            guard let since = ISO8601DateFormatter().date(from: sinceText), since <= now else {
                throw APIError.badRequest("since must be a past ISO 8601 time such as 2026-11-23T00:00:00Z")
            }
            return try json(.ok, SavingsView(since: since, until: now, totals: try await backend.context.store.savings(since: since, until: now)))
        }
        v1.get("snoozes") { _, _ in
            let snoozes = try await backend.context.store.activeSnoozes(at: backend.context.clock.now())
            return try json(.ok, snoozes.map { SnoozeView(project: $0.project, serverId: $0.serverId, until: $0.until, reason: $0.reason) })
        }
        v1.post("snoozes") { request, context in
            let body = try await request.decode(as: SnoozeRequest.self, context: context)
            guard let project = backend.context.project(named: body.project) else { throw APIError.notFound("no project named \(body.project)") }
            guard let until = ISO8601DateFormatter().date(from: body.until) ?? AutoStopPlanner.parseSnooze(body.until) else {
                throw APIError.badRequest("until must be ISO 8601 (2026-11-24T08:00:00Z) or like 20261124T0800Z")
            }
            guard until > backend.context.clock.now() else { throw APIError.badRequest("until is in the past") }
            guard !body.serverId.isEmpty, body.serverId.count <= 64 else { throw APIError.badRequest("serverId must be 1-64 characters") }
            // Stored and served back: a short note, not a place to park megabytes.
            guard (body.reason ?? "").count <= 256 else { throw APIError.badRequest("reason must be at most 256 characters") }
            let snooze = Snooze(project: project.name, serverId: body.serverId, until: until, reason: body.reason ?? "snoozed through the control API")
            try await backend.context.store.snooze(snooze)
            try await backend.context.store.append(
                JournalEntry(
                    at: backend.context.clock.now(), kind: .event, loop: "control", project: project.name, subject: body.serverId, action: "snoozed",
                    severity: "info", servers: [body.serverId], message: "server \(body.serverId) snoozed until \(body.until)"))
            return try json(.created, SnoozeView(project: snooze.project, serverId: snooze.serverId, until: snooze.until, reason: snooze.reason))
        }
        v1.delete("snoozes/:project/:server") { _, context in
            let projectName = parameter(context, "project")
            guard let project = backend.context.project(named: projectName) else { throw APIError.notFound("no project named \(projectName)") }
            let server = parameter(context, "server")
            guard try await backend.context.store.unsnooze(project: project.name, serverId: server) else {
                throw APIError.notFound("server \(server) of \(project.name) is not snoozed")
            }
            return try json(.ok, ["project": project.name, "serverId": server, "status": "unsnoozed"])
        }
        v1.get("journal") { request, _ in
            let query = request.uri.queryParameters
            let since = try number(request, "since", default: Int64(0))
            let limit = min(max(try number(request, "limit", default: 100), 1), 1000)
            var kinds: Set<JournalEntry.Kind>?
            if let kind = query.get("kind") {
                guard let parsed = JournalEntry.Kind(rawValue: kind) else { throw APIError.badRequest("kind must be intent, outcome, event or dry_run") }
                kinds = [parsed]
            }
            return try json(.ok, try await backend.context.store.journal(since: since, limit: limit, kinds: kinds))
        }
        v1.post("reload") { _, _ in
            if let problem = await backend.reload() {
                throw APIError(status: .unprocessableContent, code: "invalid_configuration", message: problem)
            }
            return try json(.ok, ["status": "reloaded"])
        }
    }

    /// A path parameter, percent-decoded (the router hands them over as sent).
    func parameter(_ context: BasicRequestContext, _ name: String) -> String {
        let raw = context.parameters.get(name) ?? ""
        return raw.removingPercentEncoding ?? raw
    }

    /// A numeric query parameter; present but not a number is a 400, not a silent default.
    func number<T: LosslessStringConvertible>(_ request: Request, _ name: String, default value: T) throws -> T {
        guard let text = request.uri.queryParameters.get(name) else { return value }
        guard let parsed = T(text) else { throw APIError.badRequest("\(name) must be a number") }
        return parsed
    }

    func loop(_ context: BasicRequestContext) throws -> ReconcileLoop {
        let name = parameter(context, "name")
        guard let loop = backend.loop(name) else {
            throw APIError.notFound("no loop named \(name); loops: \(backend.loops.map(\.name).joined(separator: ", "))")
        }
        return loop
    }

    func failureText(_ outcome: PassOutcome) -> String {
        switch outcome {
        case .failure(let message): return message
        case .partial(let report): return report.failures.map { "\($0.part): \($0.message)" }.joined(separator: "; ")
        case .success: return ""
        }
    }

    func status() async throws -> Response {
        let settings = backend.context.settings
        return try json(
            .ok,
            StatusView(
                version: backend.version, dryRun: settings.dryRun, summary: await backend.supervisor.summaryLine(),
                projects: backend.context.projects.map(\.name), loops: await backend.supervisor.statuses().map(LoopView.init)))
    }

    func schedules() throws -> Response {
        let settings = backend.context.settings
        let now = backend.context.clock.now()
        let counts = backend.scheduler.latestPlan()?.counts ?? [:]
        let views = settings.schedules.values.sorted { $0.name < $1.name }.map { schedule in
            let evaluator = ScheduleEvaluator(schedule: schedule)
            let next = evaluator.nextBoundary(after: now)
            return ScheduleView(
                name: schedule.name, timezone: schedule.timeZone.identifier, mode: schedule.mode.rawValue, manualActions: schedule.manualPolicy.rawValue,
                dryRun: schedule.dryRun || settings.dryRun, desiredState: evaluator.desiredState(at: now).rawValue, nextBoundary: next?.date,
                nextAction: next?.action.rawValue, servers: counts[schedule.name] ?? [:])
        }
        return try json(.ok, views)
    }
}
