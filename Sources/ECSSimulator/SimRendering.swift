import ECSSigning
import Foundation

/// The timestamp formats of the seeds (digest §2.11).
enum SimTime {
    enum Style {
        /// `2019-05-22T07:48:53Z` (server `created`/`updated`).
        case seconds
        /// `2016-04-25T20:04:47.591Z` (job times).
        case milliseconds
        /// `2019-05-22T07:48:19.000000` (launched_at, instance actions; no zone).
        case microsecondsNoZone
    }

    static func format(_ time: Double, _ style: Style) -> String {
        let whole = time.rounded(.down)
        let c = CivilTime(epochSeconds: Int64(whole))
        func pad(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        let base = "\(pad(c.year, 4))-\(pad(c.month, 2))-\(pad(c.day, 2))T\(pad(c.hour, 2)):\(pad(c.minute, 2)):\(pad(c.second, 2))"
        switch style {
        case .seconds: return base + "Z"
        case .milliseconds: return base + "." + pad(Int64(((time - whole) * 1000).rounded(.down)), 3) + "Z"
        case .microsecondsNoZone: return base + "." + pad(Int64(((time - whole) * 1_000_000).rounded(.down)), 6)
        }
    }
}

/// Nova microversion gates (digest §2.4).
struct Microversion: Comparable, Sendable {
    var major: Int
    var minor: Int

    static let base = Microversion(major: 2, minor: 1)
    static let maximum = Microversion(major: 2, minor: 60)

    /// From `X-OpenStack-Nova-API-Version: 2.26` or `OpenStack-API-Version: compute 2.26`; `latest`
    /// is the maximum; absent is 2.1.
    init(headerValue: String?) {
        guard var text = headerValue?.trimmingCharacters(in: .whitespaces).lowercased(), !text.isEmpty else {
            self = .base
            return
        }
        if text.hasPrefix("compute ") { text.removeFirst("compute ".count) }
        if text == "latest" {
            self = .maximum
            return
        }
        let parts = text.split(separator: ".").compactMap { Int($0) }
        if parts.count == 2 {
            self = min(Microversion(major: parts[0], minor: parts[1]), .maximum)
        } else {
            self = .base
        }
    }

    init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    static func < (lhs: Microversion, rhs: Microversion) -> Bool {
        (lhs.major, lhs.minor) < (rhs.major, rhs.minor)
    }

    func atLeast(_ minor: Int) -> Bool { self >= Microversion(major: 2, minor: minor) }
}

extension SimulatedRegion {
    /// The private address of a server: stable, derived from its ordinal in the project.
    func privateIP(_ server: SimServer) -> String {
        let n = server.ordinal
        return "192.168.\(n / 250 % 250).\(n % 250 + 2)"
    }

    /// Writes one server in the Nova detail shape, fields gated by microversion.
    func writeNovaServer(_ server: SimServer, projectId: String, base: String, version: Microversion, into json: inout JSONWriter) {
        let ip = privateIP(server)
        json.object { json in
            json.field("id", server.id)
            json.field("name", server.name)
            json.field("status", server.status)
            json.field("tenant_id", projectId)
            json.field("user_id", FleetGenerator.userId)
            json.key("addresses")
            json.object { json in
                json.key(FleetGenerator.networkId)
                json.array { json in
                    json.object { json in
                        json.field("OS-EXT-IPS-MAC:mac_addr", "fa:16:3e:\(server.id.prefix(2)):\(server.id.dropFirst(2).prefix(2)):\(server.id.dropFirst(4).prefix(2))")
                        json.field("OS-EXT-IPS:type", "fixed")
                        json.field("addr", ip)
                        json.field("version", 4)
                    }
                }
            }
            json.field("metadata", server.metadata)
            json.field("OS-EXT-STS:task_state", server.taskState)
            json.field("OS-EXT-STS:vm_state", server.vmState)
            json.field("OS-EXT-STS:power_state", ServerStateModel.powerState(vmState: server.vmState))
            json.field("OS-EXT-AZ:availability_zone", server.availabilityZone)
            json.field("OS-DCF:diskConfig", "MANUAL")
            json.key("links")
            json.array { json in
                json.object { json in
                    json.field("rel", "self")
                    json.field("href", "\(base)/v2.1/\(projectId)/servers/\(server.id)")
                }
                json.object { json in
                    json.field("rel", "bookmark")
                    json.field("href", "\(base)/\(projectId)/servers/\(server.id)")
                }
            }
            json.key("image")
            json.object { json in
                json.field("id", server.imageRef)
                json.key("links")
                json.array { _ in }
            }
            json.key("flavor")
            json.object { json in
                json.field("id", server.flavorId)
                json.key("links")
                json.array { json in
                    json.object { json in
                        json.field("rel", "bookmark")
                        json.field("href", "\(base)/\(projectId)/flavors/\(server.flavorId)")
                    }
                }
            }
            json.field("key_name", server.keyName)
            json.field("hostId", FleetGenerator.hostId(for: server.ordinal))
            json.field("OS-EXT-SRV-ATTR:host", "pod01.\(server.availabilityZone)")
            json.field("OS-EXT-SRV-ATTR:hypervisor_hostname", "nova\(server.ordinal % 97)@\(server.ordinal % 7)")
            json.field("OS-EXT-SRV-ATTR:instance_name", "instance-" + FleetGenerator.hex(UInt64(server.ordinal), digits: 8))
            json.field("created", server.createdText)
            json.field("updated", server.updatedText)
            json.field("OS-SRV-USG:launched_at", server.launchedText)
            json.field("OS-SRV-USG:terminated_at", nil as String?)
            json.key("os-extended-volumes:volumes_attached")
            json.array { json in
                json.object { json in
                    json.field("id", FleetGenerator.volumeId(for: server.id))
                    if version.atLeast(3) { json.field("delete_on_termination", true) }
                }
            }
            json.key("security_groups")
            json.array { json in json.object { json in json.field("name", "default") } }
            json.field("accessIPv4", "")
            json.field("accessIPv6", "")
            json.field("config_drive", "")
            json.field("progress", 0)
            if version.atLeast(3) {
                json.field("OS-EXT-SRV-ATTR:hostname", server.name.lowercased())
                json.field("OS-EXT-SRV-ATTR:reservation_id", "r-" + server.id.prefix(8))
                json.field("OS-EXT-SRV-ATTR:launch_index", 0)
                json.field("OS-EXT-SRV-ATTR:kernel_id", "")
                json.field("OS-EXT-SRV-ATTR:ramdisk_id", "")
                json.field("OS-EXT-SRV-ATTR:root_device_name", "/dev/vda")
                json.field("OS-EXT-SRV-ATTR:user_data", nil as String?)
            }
            if version.atLeast(9) { json.field("locked", server.locked) }
            if version.atLeast(16) { json.field("host_status", server.hostStatus) }
            if version.atLeast(19) { json.field("description", server.description) }
            if version.atLeast(26) { json.field("tags", server.tags.map(\.novaString)) }
            if server.status == "ERROR" {
                json.key("fault")
                json.object { json in
                    json.field("code", 500)
                    json.field("created", server.updatedText)
                    json.field("message", "The ECS is in error state.")
                }
            }
        }
    }

    /// Writes one server in the v1 `cloudservers` detail shape (flavor fields as strings).
    func writeCloudServer(_ server: SimServer, projectId: String, into json: inout JSONWriter) {
        let flavor = flavors[server.flavorId]
        let ip = privateIP(server)
        json.object { json in
            json.field("id", server.id)
            json.field("name", server.name)
            json.field("status", server.status)
            json.field("tenant_id", projectId)
            json.field("user_id", FleetGenerator.userId)
            json.field("enterprise_project_id", "0")
            json.key("addresses")
            json.object { json in
                json.key(FleetGenerator.vpcId)
                json.array { json in
                    json.object { json in
                        json.field("version", "4")
                        json.field("addr", ip)
                        json.field("OS-EXT-IPS:type", "fixed")
                        json.field("OS-EXT-IPS-MAC:mac_addr", "fa:16:3e:\(server.id.prefix(2)):\(server.id.dropFirst(2).prefix(2)):\(server.id.dropFirst(4).prefix(2))")
                        json.field("OS-EXT-IPS:port_id", FleetGenerator.volumeId(for: ip))
                    }
                }
            }
            json.key("flavor")
            json.object { json in
                json.field("id", server.flavorId)
                json.field("name", server.flavorId)
                json.field("disk", "0")
                json.field("vcpus", String(flavor?.vcpus ?? 0))
                json.field("ram", String(flavor?.ramMB ?? 0))
            }
            json.key("image")
            json.object { json in json.field("id", server.imageRef) }
            json.field("OS-EXT-STS:task_state", server.taskState)
            json.field("OS-EXT-STS:vm_state", server.vmState)
            json.field("OS-EXT-STS:power_state", ServerStateModel.powerState(vmState: server.vmState))
            json.field("OS-EXT-AZ:availability_zone", server.availabilityZone)
            json.field("OS-EXT-SRV-ATTR:instance_name", "instance-" + FleetGenerator.hex(UInt64(server.ordinal), digits: 8))
            json.field("OS-EXT-SRV-ATTR:host", "pod01.\(server.availabilityZone)")
            json.field("OS-EXT-SRV-ATTR:hypervisor_hostname", "nova\(server.ordinal % 97)@\(server.ordinal % 7)")
            json.field("OS-EXT-SRV-ATTR:hostname", server.name.lowercased())
            json.field("OS-EXT-SRV-ATTR:launch_index", 0)
            json.field("OS-EXT-SRV-ATTR:kernel_id", "")
            json.field("OS-EXT-SRV-ATTR:ramdisk_id", "")
            json.field("OS-EXT-SRV-ATTR:root_device_name", "/dev/vda")
            json.field("OS-DCF:diskConfig", "MANUAL")
            json.field("hostId", FleetGenerator.hostId(for: server.ordinal))
            json.field("host_status", server.hostStatus)
            json.field("key_name", server.keyName)
            json.field("created", server.createdText)
            json.field("updated", server.updatedText)
            json.field("OS-SRV-USG:launched_at", server.launchedText ?? "")
            json.field("OS-SRV-USG:terminated_at", "")
            json.key("os-extended-volumes:volumes_attached")
            json.array { json in
                json.object { json in
                    json.field("id", FleetGenerator.volumeId(for: server.id))
                    json.field("delete_on_termination", "true")
                    json.field("bootIndex", "0")
                    json.field("device", "/dev/vda")
                }
            }
            json.key("security_groups")
            json.array { json in
                json.object { json in
                    json.field("name", "default")
                    json.field("id", FleetGenerator.securityGroupId)
                }
            }
            json.field("metadata", server.metadata.merging(["vpc_id": FleetGenerator.vpcId, "charging_mode": "0", "os_type": "Linux"]) { a, _ in a })
            json.field("locked", server.locked)
            json.field("tags", server.tags.map(\.novaString))
            json.key("sys_tags")
            json.array { json in
                json.object { json in
                    json.field("key", "_sys_enterprise_project_id")
                    json.field("value", "0")
                }
            }
            json.field("description", server.description)
            json.field("accessIPv4", "")
            json.field("accessIPv6", "")
            json.field("config_drive", "")
            json.field("progress", 0)
            if server.status == "ERROR" {
                json.key("fault")
                json.object { json in
                    json.field("code", 500)
                    json.field("message", "The ECS is in error state.")
                }
            }
        }
    }

    /// Writes a v1 flavor with its `os_extra_specs`.
    func writeFlavor(_ flavor: SimFlavor, projectId: String, base: String, into json: inout JSONWriter) {
        json.object { json in
            json.field("id", flavor.id)
            json.field("name", flavor.id)
            json.field("vcpus", String(flavor.vcpus))
            json.field("ram", flavor.ramMB)
            json.field("disk", "0")
            json.field("swap", "")
            json.key("links")
            json.array { json in
                json.object { json in
                    json.field("rel", "self")
                    json.field("href", "\(base)/v1.0/\(projectId)/flavors/\(flavor.id)")
                    json.field("type", nil as String?)
                }
                json.object { json in
                    json.field("rel", "bookmark")
                    json.field("href", "\(base)/\(projectId)/flavors/\(flavor.id)")
                    json.field("type", nil as String?)
                }
            }
            json.field("OS-FLV-EXT-DATA:ephemeral", 0)
            json.field("rxtx_factor", 1.0)
            json.field("OS-FLV-DISABLED:disabled", false)
            json.field("rxtx_quota", nil as String?)
            json.field("rxtx_cap", nil as String?)
            json.field("os-flavor-access:is_public", true)
            json.field("os_extra_specs", flavor.extraSpecs)
        }
    }

    /// Writes a job with its sub-jobs (seed §5.8.1 shape).
    func writeJob(_ job: SimJob, at now: Double, into json: inout JSONWriter) {
        let status = job.status(at: now)
        let failed = job.subJobs.first { $0.status == "FAIL" }
        json.object { json in
            json.field("status", status)
            json.key("entities")
            json.object { json in
                json.field("sub_jobs_total", job.subJobs.count)
                json.key("sub_jobs")
                json.array { json in
                    for subJob in job.subJobs {
                        json.object { json in
                            let subStatus = status == "INIT" ? "INIT" : subJob.status
                            json.field("status", subStatus)
                            json.key("entities")
                            json.object { json in
                                json.field("server_id", subJob.serverId)
                                if let reason = subJob.failReason { json.field("errorcode_message", reason) }
                            }
                            json.field("job_id", subJob.id)
                            json.field("job_type", job.operation.subJobType)
                            json.field("begin_time", SimTime.format(subJob.begin, .milliseconds))
                            json.field("end_time", subJob.end.map { SimTime.format($0, .milliseconds) })
                            json.field("error_code", subJob.errorCode)
                            json.field("fail_reason", subJob.failReason)
                        }
                    }
                }
            }
            json.field("job_id", job.id)
            json.field("job_type", job.operation.jobType)
            json.field("begin_time", SimTime.format(job.created, .milliseconds))
            json.field("end_time", status == "SUCCESS" || status == "FAIL" ? job.end.map { SimTime.format($0, .milliseconds) } : nil)
            json.field("error_code", status == "FAIL" ? failed?.errorCode : nil)
            json.field("fail_reason", status == "FAIL" ? failed?.failReason : nil)
        }
    }

    /// The `absolute` quota map, with the example spellings of the seeds.
    func writeAbsoluteLimits(_ project: SimProject, into json: inout JSONWriter) {
        let quota = project.quota
        json.object { json in
            json.field("maxServerMeta", 128)
            json.field("maxPersonality", 5)
            json.field("maxImageMeta", 128)
            json.field("maxPersonalitySize", 10240)
            json.field("maxSecurityGroupRules", 20)
            json.field("maxTotalKeypairs", quota.keyPairs)
            json.field("totalRAMUsed", project.usedRAM)
            json.field("totalInstancesUsed", project.servers.count)
            json.field("maxSecurityGroups", quota.securityGroups)
            json.field("totalFloatingIpsUsed", 0)
            json.field("maxTotalCores", quota.cores)
            json.field("totalSecurityGroupsUsed", project.securityGroupsUsed)
            json.field("maxTotalFloatingIps", quota.floatingIps)
            json.field("maxTotalInstances", quota.instances)
            json.field("totalCoresUsed", project.usedCores)
            json.field("maxTotalRAMSize", quota.ramMB)
            json.field("maxServerGroups", quota.serverGroups)
            json.field("maxServerGroupMembers", 16)
            json.field("totalServerGroupsUsed", project.serverGroupsUsed)
        }
    }

    /// Writes one instance action, with events when `withEvents`.
    func writeInstanceAction(_ action: SimInstanceAction, serverId: String, projectId: String, withEvents: Bool, into json: inout JSONWriter) {
        json.object { json in
            json.field("action", action.action)
            json.field("instance_uuid", serverId)
            json.field("message", action.result == "Error" ? "Error" : nil)
            json.field("project_id", projectId)
            json.field("request_id", action.requestId)
            json.field("start_time", SimTime.format(action.start, .microsecondsNoZone))
            json.field("user_id", FleetGenerator.userId)
            if withEvents {
                json.key("events")
                json.array { json in
                    json.object { json in
                        json.field("event", action.event)
                        json.field("result", action.result)
                        json.field("traceback", nil as String?)
                        json.field("start_time", SimTime.format(action.start, .microsecondsNoZone))
                        json.field("finish_time", action.finish.map { SimTime.format($0, .microsecondsNoZone) })
                    }
                }
            }
        }
    }
}
