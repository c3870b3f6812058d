/// The ECS status model of seed Appendix A.3: `status` is derived from `vm_state` and `task_state`
/// (table A-4) and never stored, and each operation walks a fixed path of intermediate states.
public enum ServerStateModel {
    /// `status` for a (`vm_state`, `task_state`) pair, per table A-4; `UNKNOWN` for any other pair.
    public static func status(vmState: String, taskState: String?) -> String {
        let task = taskState ?? ""
        switch vmState {
        case "building":
            return ["", "scheduling", "block_device_mapping", "networking", "spawning"].contains(task) ? "BUILD" : "UNKNOWN"
        case "active":
            switch task {
            case "rebooting", "reboot_pending", "reboot_started": return "REBOOT"
            case "rebooting_hard", "reboot_pending_hard", "reboot_started_hard": return "HARD_REBOOT"
            case "rebuilding", "rebuild_block_device_mapping", "rebuild_spawning", "rebuild_spawnning": return "REBUILD"
            case "migrating": return "MIGRATING"
            case "powering-off", "deleting", "": return "ACTIVE"
            default: return "UNKNOWN"
            }
        case "stopped":
            switch task {
            case "resize_prep", "resize_migrating", "resize_migrated", "resize_finish": return "RESIZE"
            case "rebuilding", "rebuild_block_device_mapping", "rebuild_spawning", "rebuild_spawnning": return "REBUILD"
            case "powering-on", "deleting", "": return "SHUTOFF"
            default: return "UNKNOWN"
            }
        case "resized":
            switch task {
            case "resize_reverting": return "REVERT_RESIZE"
            case "": return "VERIFY_RESIZE"
            default: return "UNKNOWN"
            }
        case "error":
            switch task {
            case "rebuilding", "rebuild_block_device_mapping", "rebuild_spawning", "rebuild_spawnning": return "REBUILD"
            case "deleting", "": return "ERROR"
            default: return "UNKNOWN"
            }
        case "deleted":
            return task.isEmpty ? "DELETED" : "UNKNOWN"
        case "shelved":
            return ["", "shelving", "shelving_image_pending_upload", "shelving_image_uploading", "unshelving"].contains(task) ? "SHELVED" : "UNKNOWN"
        case "shelved_offloaded":
            return ["", "shelving_offloading", "unshelving"].contains(task) ? "SHELVED_OFFLOADED" : "UNKNOWN"
        default:
            return "UNKNOWN"
        }
    }

    /// `OS-EXT-STS:power_state` for a vm_state, numbered as seed S1 does (0 pending, 1 running,
    /// 2 paused, 3 shutdown, 4 crashed).
    public static func powerState(vmState: String) -> Int {
        switch vmState {
        case "active", "resized": return 1
        case "stopped", "shelved", "shelved_offloaded", "deleted": return 3
        case "paused": return 2
        case "error": return 4
        default: return 0
        }
    }

    /// An operation that moves a server through intermediate states.
    public enum Operation: String, Sendable, CaseIterable {
        case create, start, stop, reboot, hardReboot, delete

        /// The Nova instance-action name recorded for it.
        public var instanceAction: String {
            switch self {
            case .create: return "create"
            case .start: return "start"
            case .stop: return "stop"
            case .reboot, .hardReboot: return "reboot"
            case .delete: return "delete"
            }
        }

        /// The instance-action event name (upstream Nova names; the seeds show only the create one).
        public var eventName: String {
            switch self {
            case .create: return "compute_build_and_run_instance"
            case .start: return "compute_start_instance"
            case .stop: return "compute_stop_instance"
            case .reboot, .hardReboot: return "compute_reboot_instance"
            case .delete: return "compute_terminate_instance"
            }
        }

        /// The sub-job `job_type` (the seeds name only `createSingleServer`; the others are ours).
        public var subJobType: String {
            switch self {
            case .create: return "createSingleServer"
            case .start: return "startSingleServer"
            case .stop: return "stopSingleServer"
            case .reboot, .hardReboot: return "rebootSingleServer"
            case .delete: return "deleteSingleServer"
            }
        }

        /// The parent `job_type`.
        public var jobType: String {
            switch self {
            case .create: return "createServer"
            case .start: return "batchStartServers"
            case .stop: return "batchStopServers"
            case .reboot, .hardReboot: return "batchRebootServers"
            case .delete: return "deleteServers"
            }
        }

        /// The error code of a failed sub-job of this operation.
        public var failureCode: String {
            switch self {
            case .create: return "Ecs.0204"
            case .start: return "Ecs.0226"
            case .stop: return "Ecs.0100"
            case .reboot, .hardReboot: return "Ecs.0227"
            case .delete: return "Ecs.0501"
            }
        }
    }

    /// One step of an operation: the (vm_state, task_state) it sets.
    public struct Step: Sendable, Equatable {
        public var vmState: String
        public var taskState: String?
    }

    /// The intermediate steps of `operation` starting from `vmState`, and the final state.
    /// The first step is applied when the operation is accepted.
    public static func path(of operation: Operation, from vmState: String) -> (steps: [Step], final: Step) {
        switch operation {
        case .create:
            return (
                ["scheduling", "block_device_mapping", "networking", "spawning"].map { Step(vmState: "building", taskState: $0) },
                Step(vmState: "active", taskState: nil)
            )
        case .start:
            return ([Step(vmState: "stopped", taskState: "powering-on")], Step(vmState: "active", taskState: nil))
        case .stop:
            return ([Step(vmState: "active", taskState: "powering-off")], Step(vmState: "stopped", taskState: nil))
        case .reboot:
            return (
                ["rebooting", "reboot_pending", "reboot_started"].map { Step(vmState: "active", taskState: $0) },
                Step(vmState: "active", taskState: nil)
            )
        case .hardReboot:
            return (
                ["rebooting_hard", "reboot_pending_hard", "reboot_started_hard"].map { Step(vmState: "active", taskState: $0) },
                Step(vmState: "active", taskState: nil)
            )
        case .delete:
            return ([Step(vmState: vmState, taskState: "deleting")], Step(vmState: "deleted", taskState: nil))
        }
    }

    /// Why `operation` cannot start on a server in (`vmState`, `taskState`), or nil when it can.
    /// Start needs SHUTOFF, stop and reboot need ACTIVE, delete needs ACTIVE, SHUTOFF or ERROR; any
    /// operation needs an empty task_state.
    public static func rejection(of operation: Operation, vmState: String, taskState: String?, locked: Bool) -> SimError? {
        if locked && operation != .create { return .locked }
        if let taskState, !taskState.isEmpty { return .busy }
        let status = status(vmState: vmState, taskState: taskState)
        switch operation {
        case .create: return nil
        case .start: return status == "SHUTOFF" ? nil : .invalidState
        case .stop, .reboot, .hardReboot: return status == "ACTIVE" ? nil : .invalidState
        case .delete: return ["ACTIVE", "SHUTOFF", "ERROR"].contains(status) ? nil : .invalidState
        }
    }
}
