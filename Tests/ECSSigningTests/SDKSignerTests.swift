import ECSSigning
import Foundation
import Testing

/// Known-answer tests from `shared/spec/signing.md`, produced by the official SDK's `Signer`.
@Suite struct SDKSignerKnownAnswerTests {
    let credentials = AccessKeyCredentials(accessKey: "AKTESTVECTOR", secretKey: "SKtestvector")

    @Test func getWithQueryMatchesOfficialVector() {
        let request = SignableRequest(
            method: "GET",
            path: "/v1/p1/cloudservers/detail",
            query: [.init("offset", "1"), .init("limit", "100"), .init("tags", "Schedule=office")],
            headers: [
                .init("Content-Type", "application/json"),
                .init("X-Project-Id", "p1"),
                .init("X-Sdk-Date", "20240101T000000Z"),
            ]
        )
        let signed = SDKSigner.sign(request, credentials: credentials, host: "127.0.0.1:8080")
        #expect(signed.queryString == "limit=100&offset=1&tags=Schedule%3Doffice")
        #expect(
            signed.authorization
                == "SDK-HMAC-SHA256 Access=AKTESTVECTOR, SignedHeaders=content-type;host;x-project-id;x-sdk-date, Signature=6cc37a03d72edc2f3c0f1f342da5063cee0fb757908ba90a483549d6bb7b707f"
        )
    }

    @Test func postWithBodyMatchesOfficialVector() {
        let request = SignableRequest(
            method: "POST",
            path: "/v1/p1/cloudservers/action",
            headers: [
                .init("Content-Type", "application/json;charset=utf-8"),
                .init("X-Project-Id", "p1"),
                .init("X-Sdk-Date", "20240101T000000Z"),
            ],
            body: Array(#"{"os-stop":{"servers":[{"id":"s-1"}],"type":"SOFT"}}"#.utf8)
        )
        let signed = SDKSigner.sign(request, credentials: credentials, host: "127.0.0.1:8080")
        #expect(signed.queryString == "")
        #expect(
            signed.authorization.hasSuffix(
                "Signature=0c2af81cdbff626cd50efd5d09c3e12c9e000364948a9247ee6b16222fd06339")
        )
    }

    @Test func canonicalURIAlwaysEndsInSlashAndReencodesSegments() {
        #expect(SDKSigner.canonicalURI("/v1/p1/cloudservers/action") == "/v1/p1/cloudservers/action/")
        #expect(SDKSigner.canonicalURI("/a/") == "/a/")
        #expect(SDKSigner.canonicalURI("/a%20b/c d/é") == "/a%20b/c%20d/%C3%A9/")
        #expect(SDKSigner.canonicalURI("/x%2Fy") == "/x/y/")
        #expect(SDKSigner.canonicalURI("/100%") == "/100%25/")
    }

    @Test func canonicalQuerySortsByCodePointsThenValues() {
        let query = SDKSigner.canonicalQueryString([
            .init("b", "2"), .init("a", "z"), .init("a", "b"), .init("é", "x y"), .init("Z", "+"),
        ])
        #expect(query == "Z=%2B&a=b&a=z&b=2&%C3%A9=x%20y")
    }

    @Test func dateFormatRoundTrips() {
        let date = Date(timeIntervalSince1970: 1_704_067_200)  // 2024-01-01T00:00:00Z
        #expect(SDKDate.format(date) == "20240101T000000Z")
        #expect(SDKDate.parse("20240101T000000Z") == date)
        #expect(SDKDate.format(Date(timeIntervalSince1970: 951_825_599)) == "20000229T115959Z")
        #expect(SDKDate.parse("2024-01-01T00:00:00Z") == nil)
        #expect(SDKDate.parse("20241301T000000Z") == nil)
    }

    @Test func headerValuesAreTrimmedLikePythonStrip() {
        #expect(SDKSigner.trimHeaderValue(" \t a b \u{0B}") == "a b")
        #expect(SDKSigner.trimHeaderValue("\u{1F}x\u{A0}") == "x")
        #expect(SDKSigner.trimHeaderValue("   ") == "")
    }

    @Test func credentialsNeverPrintTheSecret() {
        #expect(!"\(credentials)".contains("SKtestvector"))
    }
}

@Suite struct SignatureVerifierTests {
    let credentials = AccessKeyCredentials(accessKey: "AK1", secretKey: "secret-1")
    let signedAt = Date(timeIntervalSince1970: 1_704_067_200)

    func signedRequest(body: String = #"{"a":1}"#) -> (headers: [SignableRequest.Header], query: String) {
        let request = SignableRequest(
            method: "POST",
            path: "/v1/p1/servers/resource_instances/action",
            query: [.init("x", "1 2")],
            headers: [.init("Content-Type", "application/json"), .init("X-Project-Id", "p1")],
            body: Array(body.utf8)
        )
        let signed = SDKSigner.sign(request, credentials: credentials, host: "127.0.0.1:9", date: signedAt)
        return (signed.headers + [.init("Content-Length", "7"), .init("Accept", "*/*")], signed.queryString)
    }

    var verifier: SignatureVerifier {
        SignatureVerifier { $0 == "AK1" ? "secret-1" : nil }
    }

    func verify(headers: [SignableRequest.Header], query: String, body: String = #"{"a":1}"#, now: Date? = nil) throws(SignatureRejection) {
        try verifier.verify(
            method: "POST",
            path: "/v1/p1/servers/resource_instances/action",
            rawQuery: query,
            headers: headers,
            body: Array(body.utf8),
            now: now ?? signedAt.addingTimeInterval(30)
        )
    }

    @Test func acceptsWhatTheSignerSigned() throws {
        let (headers, query) = signedRequest()
        try verify(headers: headers, query: query)
    }

    @Test func rejectsChangedBody() {
        let (headers, query) = signedRequest()
        #expect(throws: SignatureRejection.signatureMismatch) { try verify(headers: headers, query: query, body: #"{"a":2}"#) }
    }

    @Test func rejectsChangedQuery() {
        let (headers, query) = signedRequest()
        #expect(throws: SignatureRejection.signatureMismatch) { try verify(headers: headers, query: query + "&y=1") }
    }

    @Test func rejectsClockSkewBeyondFifteenMinutes() {
        let (headers, query) = signedRequest()
        #expect(throws: SignatureRejection.clockSkew(seconds: -960)) {
            try verify(headers: headers, query: query, now: signedAt.addingTimeInterval(960))
        }
    }

    @Test func rejectsUnknownAccessKey() {
        let (headers, query) = signedRequest()
        let forged = headers.map { header in
            header.name == "Authorization" ? .init(header.name, header.value.replacingOccurrences(of: "Access=AK1", with: "Access=AK2")) : header
        }
        #expect(throws: SignatureRejection.unknownAccessKey("AK2")) { try verify(headers: forged, query: query) }
    }

    @Test func rejectsMissingAndMalformedAuthorization() {
        let (headers, query) = signedRequest()
        let without = headers.filter { $0.name != "Authorization" }
        #expect(throws: SignatureRejection.missingAuthorization) { try verify(headers: without, query: query) }
        #expect(throws: SignatureRejection.malformedAuthorization) {
            try verify(headers: without + [.init("Authorization", "SDK-HMAC-SHA256 Access=AK1")], query: query)
        }
        #expect(throws: SignatureRejection.unsupportedAlgorithm("AWS4-HMAC-SHA256")) {
            try verify(headers: without + [.init("Authorization", "AWS4-HMAC-SHA256 Credential=x")], query: query)
        }
    }

    @Test func rejectsDroppedSignedHeader() {
        let (headers, query) = signedRequest()
        let dropped = headers.filter { $0.name != "X-Project-Id" }
        #expect(throws: SignatureRejection.missingSignedHeader("x-project-id")) { try verify(headers: dropped, query: query) }
    }
}
