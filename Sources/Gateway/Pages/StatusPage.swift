import Foundation
import ICBDCore

/// `/`: one self-contained HTML page for a person: sites, nodes with health, images with their
/// versions and where each is, replication in flight, admission and memory-cache figures.
enum StatusPage {
    static func render(gateway: GatewayResponder) -> String {
        let snapshot = gateway.view.snapshot
        let ejected = gateway.health.ejected
        let stats = gateway.memory.statistics
        let reads = stats.hits + stats.misses
        let hitRatio = reads == 0 ? "–" : String(format: "%.1f %%", Double(stats.hits) * 100 / Double(reads))
        var html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>icbd gateway \(escape(gateway.configuration.name))</title>
            <style>
            body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
            h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}
            table{border-collapse:collapse;margin:.4em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
            th{background:#f3f3f3}.up{color:#080}.down{color:#b00}.warn{color:#b60}
            .figures span{display:inline-block;margin-right:2em}
            </style></head><body>
            <h1>icbd gateway <code>\(escape(gateway.configuration.name))</code> · site <code>\(escape(gateway.configuration.site.rawValue))</code></h1>
            <p class="figures"><span>catalog revision <b>\(snapshot.revision)</b> (\(gateway.view.isLoaded ? "live" : "<span class=down>not loaded</span>"))</span>
            <span>ready: <b>\(gateway.readinessProblem().map(escape) ?? "yes")</b></span>
            <span>upstream reads in flight <b>\(gateway.admission.inUse)</b> of admission limit <b>\(gateway.admission.limit)</b></span>
            <span>memory chunk cache <b>\(stats.bytes >> 20) MiB</b> of \(gateway.memory.capacityBytes >> 20) MiB, hit ratio <b>\(hitRatio)</b></span></p>

            """
        html += "<h2>Sites</h2><table><tr><th>site</th><th>workstation ranges</th><th>description</th></tr>"
        for site in snapshot.sites.values.sorted(by: { $0.name < $1.name }) {
            html += "<tr><td>\(escape(site.name.rawValue))</td><td>\(escape(site.cidrs.map(\.description).joined(separator: ", ")))</td><td>\(escape(site.description))</td></tr>"
        }
        html += "</table><h2>Nodes</h2><table><tr><th>node</th><th>role</th><th>site</th><th>address</th><th>capacity</th><th>held</th><th>cache hit ratio</th><th>state</th><th>chunks served here</th><th>failed reads</th></tr>"
        for node in snapshot.nodes.values.sorted(by: { ($0.site, $0.name) < ($1.site, $1.name) }) {
            let state: String
            switch node.state {
            case .up where ejected.contains(node.name.rawValue): state = "<span class=warn>up, ejected after failed reads</span>"
            case .up: state = "<span class=up>up</span>"
            case .draining: state = "<span class=warn>draining</span>"
            default: state = "<span class=down>down</span>"
            }
            let reads = gateway.metrics.reads(of: node.name.rawValue)
            let address = (node.rpcAddress ?? node.httpAddress)?.description ?? ""
            let capacity = node.capacityBytes > 0 ? ByteCount.text(node.capacityBytes) : ""
            html += "<tr><td>\(escape(node.name.rawValue))</td><td>\(role(node.role))</td><td>\(escape(node.site.rawValue))</td><td>\(escape(address))</td>"
            let held = node.cacheUsage.map { ByteCount.text($0.usedBytes) } ?? ""
            let nodeHitRatio = node.cacheUsage.map { String(format: "%.1f %%", $0.hitRatio * 100) } ?? ""
            html += "<td>\(capacity)</td><td>\(held)</td><td>\(nodeHitRatio)</td><td>\(state)</td><td>\(reads.served)</td><td>\(reads.failed)</td></tr>"
        }
        html += "</table><h2>Images</h2><table><tr><th>image</th><th>version</th><th>state</th><th>tags</th><th>files</th><th>present on</th></tr>"
        for entry in snapshot.images.values.sorted(by: { $0.image.name < $1.image.name }) {
            for version in entry.versions.values.sorted(by: { $0.number > $1.number }) {
                let tags = entry.tags.values.filter { $0.version == version.number }.map(\.name.rawValue).sorted().joined(separator: ", ")
                let files = version.files.map { "\(escape($0.path.rawValue)) (\(ByteCount.text($0.size)))" }.joined(separator: "<br>")
                let present = snapshot.repositories(holding: entry.image.name.rawValue, version: version.number).sorted().joined(separator: ", ")
                html += "<tr><td>\(escape(entry.image.name.rawValue))</td><td>\(version.number)</td><td>\(version.state.rawValue)</td>"
                html += "<td>\(escape(tags))</td><td>\(files)</td><td>\(escape(present))</td></tr>"
            }
        }
        html += "</table>"
        html += rollouts(snapshot)
        html += boots(gateway.boots.records)
        html += "<h2>Replication in flight</h2>"
        let receiving = snapshot.placements.values.filter { $0.state == .receiving }.sorted { ($0.image, $0.version) < ($1.image, $1.version) }
        if receiving.isEmpty {
            html += "<p>none</p>"
        } else {
            html += "<table><tr><th>image</th><th>version</th><th>to</th><th>detail</th></tr>"
            for placement in receiving {
                html += "<tr><td>\(escape(placement.image.rawValue))</td><td>\(placement.version)</td><td>\(escape(placement.node.rawValue))</td><td>\(escape(placement.detail))</td></tr>"
            }
            html += "</table>"
        }
        html += "<p><a href=\"/v1/images\">/v1/images</a> · <a href=\"/metrics\">/metrics</a> · <a href=\"/readyz\">/readyz</a></p></body></html>\n"
        return html
    }

    /// Rollouts: each tag's running or last rollout, its step and why it is where it is.
    private static func rollouts(_ snapshot: CatalogSnapshot) -> String {
        let rollouts = snapshot.images.values.flatMap(\.rollouts.values).sorted { ($0.image, $0.tag) < ($1.image, $1.tag) }
        guard !rollouts.isEmpty else { return "" }
        var html = "<h2>Rollouts</h2><table><tr><th>image</th><th>tag</th><th>versions</th><th>site</th><th>step</th><th>state</th><th>step's boots</th><th>failed</th><th>detail</th></tr>"
        for rollout in rollouts {
            html += "<tr><td>\(escape(rollout.image.rawValue))</td><td>\(escape(rollout.tag.rawValue))</td><td>\(rollout.fromVersion) → \(rollout.toVersion)</td>"
            html += "<td>\(escape(rollout.site?.rawValue ?? "every"))</td><td>\(rollout.step + 1)/\(rollout.steps.count) (\(RolloutRecord.percent(rollout.slice)))</td>"
            html += "<td>\(rollout.state.rawValue)</td><td>\(rollout.progress.boots)</td><td>\(rollout.progress.failed)</td><td>\(escape(rollout.detail))</td></tr>"
        }
        return html + "</table>"
    }

    /// Boots: workstations waiting, per-version success and times, the most recent boots.
    private static func boots(_ records: [BootRecord]) -> String {
        let waiting = records.filter { if case .waiting = $0.outcome { true } else { false } }
        var html = "<h2>Boots</h2><p class=figures><span>workstations waiting <b>\(waiting.count)</b></span>"
        html += "<span>boots held <b>\(records.count)</b></span></p>"
        let summaries = VersionBootSummary.of(records)
        if !summaries.isEmpty {
            html += "<table><tr><th>image</th><th>version</th><th>boots ended</th><th>success rate</th><th>failed</th>"
            html += "<th>median to kernel+initrd</th><th>median to up</th></tr>"
            for summary in summaries {
                let rate = summary.successRate.map { String(format: "%.1f %%", $0 * 100) } ?? "–"
                html += "<tr><td>\(escape(summary.image))</td><td>\(summary.version)</td><td>\(summary.ended)</td><td>\(rate)</td>"
                html += "<td>\(summary.failed)</td><td>\(seconds(summary.medianLoaded))</td><td>\(seconds(summary.medianUp))</td></tr>"
            }
            html += "</table>"
        }
        guard !records.isEmpty else { return html + "<p>no boots yet</p>" }
        html += "<table><tr><th>started</th><th>MAC</th><th>client</th><th>site</th><th>version</th><th>outcome</th><th>to script</th>"
        html += "<th>to kernel+initrd</th><th>to up</th><th>read</th><th>disk reads p50 / p99</th><th>errors</th><th>503s</th></tr>"
        let formatter = ISO8601DateFormatter()
        for record in records.prefix(recentBoots) {
            let phases = record.phases
            var outcome = escape(record.outcomeText)
            if case .waiting(let reason) = record.outcome { outcome += ": " + escape(reason) }
            let latency = record.diskReads == 0 ? "" : "\(seconds(record.readLatencyP50)) / \(seconds(record.readLatencyP99)) (\(record.diskReads))"
            html += "<tr><td>\(formatter.string(from: record.started))</td><td>\(record.mac)</td><td>\(record.client)</td><td>\(escape(record.site))</td>"
            html += "<td>\(record.target.map { escape("\($0.image):\($0.version)") } ?? "")</td><td>\(outcome)</td>"
            html += "<td>\(seconds(phases[.script]))</td><td>\(seconds(phases[.loaded]))</td><td>\(seconds(phases[.booted] ?? phases[.settled]))</td>"
            html += "<td>\(record.bytesRead > 0 ? ByteCount.text(record.bytesRead) : "")</td><td>\(latency)</td><td>\(record.errors)</td><td>\(record.unavailable)</td></tr>"
        }
        return html + "</table>"
    }

    /// Recent boots listed on the page.
    private static let recentBoots = 50

    private static func seconds(_ duration: Duration?) -> String {
        guard let duration else { return "" }
        let value = Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
        return value < 1 ? String(format: "%.1f ms", value * 1000) : String(format: "%.2f s", value)
    }

    private static func role(_ role: NodeRole) -> String {
        switch role {
        case .cache: "cache"
        case .replicator: "repository"
        case .gateway: "gateway"
        }
    }

    static func escape(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "&": escaped += "&amp;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}

/// Sizes for people: 1.5 GiB, 300 MiB, 12 KiB.
enum ByteCount {
    static func text(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f ", value) + units[unit]
    }
}
