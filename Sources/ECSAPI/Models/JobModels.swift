import Foundation

/// The status of an asynchronous job (seed §5.8.1): INIT → RUNNING → SUCCESS | FAIL.
public enum JobStatus: OpenEnum {
    case initializing, running, success, fail
    case other(String)

    public init(rawValue: String) {
        switch rawValue.uppercased() {
        case "INIT": self = .initializing
        case "RUNNING": self = .running
        case "SUCCESS": self = .success
        case "FAIL", "FAILED": self = .fail
        default: self = .other(rawValue)
        }
    }

    public var rawValue: String {
        switch self {
        case .initializing: return "INIT"
        case .running: return "RUNNING"
        case .success: return "SUCCESS"
        case .fail: return "FAIL"
        case .other(let raw): return raw
        }
    }

    /// True once the job has ended (SUCCESS or FAIL).
    public var isFinished: Bool { self == .success || self == .fail }
}

/// The `entities` of a job or sub-job.
public struct JobEntities: Codable, Sendable, Hashable {
    @BlankAsNil public var serverId: String?
    @BlankAsNil public var nicId: String?
    /// Sub-job failure cause.
    @BlankAsNil public var errorcodeMessage: String?
    @LenientOptionalInt public var subJobsTotal: Int?
    public var subJobs: [Job]?

    enum CodingKeys: String, CodingKey {
        case serverId = "server_id"
        case nicId = "nic_id"
        case errorcodeMessage = "errorcode_message"
        case subJobsTotal = "sub_jobs_total"
        case subJobs = "sub_jobs"
    }

    public init(serverId: String? = nil, subJobs: [Job]? = nil) {
        self.serverId = serverId
        self.subJobs = subJobs
        self.subJobsTotal = subJobs?.count
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        _serverId = try c.decode(BlankAsNil.self, forKey: .serverId)
        _nicId = try c.decode(BlankAsNil.self, forKey: .nicId)
        _errorcodeMessage = try c.decode(BlankAsNil.self, forKey: .errorcodeMessage)
        _subJobsTotal = try c.decode(LenientOptionalInt.self, forKey: .subJobsTotal)
        subJobs = try c.decodeIfPresent([Job].self, forKey: .subJobs)
    }
}

/// A job or sub-job, as `GET /v1/{project_id}/jobs/{job_id}` returns it.
public struct Job: Codable, Sendable, Hashable {
    public var status: JobStatus
    public var entities: JobEntities?
    @BlankAsNil public var jobId: String?
    /// Opaque: the seeds document only `createServer` and `createSingleServer`.
    @BlankAsNil public var jobType: String?
    @BlankAsNil public var beginTime: String?
    @BlankAsNil public var endTime: String?
    @BlankAsNil public var errorCode: String?
    @BlankAsNil public var failReason: String?

    enum CodingKeys: String, CodingKey {
        case status, entities
        case jobId = "job_id"
        case jobType = "job_type"
        case beginTime = "begin_time"
        case endTime = "end_time"
        case errorCode = "error_code"
        case failReason = "fail_reason"
    }

    public init(status: JobStatus, jobId: String?, jobType: String? = nil, entities: JobEntities? = nil, errorCode: String? = nil, failReason: String? = nil) {
        self.status = status
        self.jobId = jobId
        self.jobType = jobType
        self.entities = entities
        self.errorCode = errorCode
        self.failReason = failReason
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        status = try c.decodeIfPresent(JobStatus.self, forKey: .status) ?? .other("")
        entities = try c.decodeIfPresent(JobEntities.self, forKey: .entities)
        _jobId = try c.decode(BlankAsNil.self, forKey: .jobId)
        _jobType = try c.decode(BlankAsNil.self, forKey: .jobType)
        _beginTime = try c.decode(BlankAsNil.self, forKey: .beginTime)
        _endTime = try c.decode(BlankAsNil.self, forKey: .endTime)
        _errorCode = try c.decode(BlankAsNil.self, forKey: .errorCode)
        _failReason = try c.decode(BlankAsNil.self, forKey: .failReason)
    }

    /// The sub-jobs (empty for a job without any).
    public var subJobs: [Job] { entities?.subJobs ?? [] }

    /// Sub-jobs that failed, each with the server it concerned.
    public var failedSubJobs: [Job] { subJobs.filter { $0.status == .fail } }

    /// `begin_time` as a date.
    public var beginDate: Date? { beginTime.flatMap(ECSTimestamp.parse) }
    /// `end_time` as a date.
    public var endDate: Date? { endTime.flatMap(ECSTimestamp.parse) }
}

/// `{"job_id": "..."}`, the answer of every v1 asynchronous call (create adds `serverIds`).
public struct JobAccepted: Decodable, Sendable, Hashable {
    public var jobId: String
    /// Create only: the ids of the servers being created, when the API lists them.
    public var serverIds: [String]?
    /// Create only (yearly/monthly): the order id.
    public var orderId: String?

    enum CodingKeys: String, CodingKey {
        case jobId = "job_id"
        case serverIds
        case orderId = "order_id"
    }
}
