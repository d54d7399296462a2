import Foundation

/// An SVG chart of latency percentiles: one row per (workload, system, clients), bars for
/// p50, p90 and p99 on a logarithmic microsecond axis, so that mnemod and its peers can be
/// compared at a glance next to the Markdown table.
enum Plot {
    static func svg(_ results: [RunResult], title: String) -> String {
        let rowHeight = 26.0
        let labelWidth = 470.0
        let chartWidth = 560.0
        let top = 50.0
        let height = top + rowHeight * Double(results.count) + 40
        let values = results.flatMap { [$0.p50, $0.p90, $0.p99] }.filter { $0 > 0 }
        let lo = pow(10, floor(log10(values.min() ?? 1)))
        let hi = pow(10, ceil(log10(values.max() ?? 10)))
        func x(_ v: Double) -> Double {
            labelWidth + chartWidth * (log10(max(v, lo)) - log10(lo)) / max(log10(hi) - log10(lo), 1e-9)
        }
        var s = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(labelWidth + chartWidth + 20))" height="\(Int(height))" \
            font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="10" y="20" font-size="14" font-weight="bold">\(escape(title))</text>
            <text x="10" y="38" fill="#555">latency in microseconds, log scale; bars: p50 (dark), p90, p99 (light)</text>

            """
        var decade = lo
        while decade <= hi {
            let gx = x(decade)
            s += "<line x1=\"\(gx)\" y1=\"\(top - 4)\" x2=\"\(gx)\" y2=\"\(height - 30)\" stroke=\"#ddd\"/>"
            s += "<text x=\"\(gx)\" y=\"\(height - 14)\" text-anchor=\"middle\" fill=\"#555\">\(format(decade))</text>\n"
            decade *= 10
        }
        for (i, r) in results.enumerated() {
            let y = top + rowHeight * Double(i)
            let mnemo = r.isMnemo
            let (dark, mid, light) = mnemo ? ("#1f5fa8", "#5b8fd0", "#a9c4e8") : ("#7a7a7a", "#a5a5a5", "#d2d2d2")
            let size = r.n.map { " · N \(Report.n($0))" } ?? ""
            s += "<text x=\"10\" y=\"\(y + 15)\">\(escape("\(r.workload)\(size) · \(r.system) · \(r.clients) client\(r.clients == 1 ? "" : "s")"))</text>"
            for (value, color) in [(r.p99, light), (r.p90, mid), (r.p50, dark)] {
                s += "<rect x=\"\(labelWidth)\" y=\"\(y + 4)\" width=\"\(max(1, x(value) - labelWidth))\" height=\"14\" fill=\"\(color)\"/>"
            }
            s += "<text x=\"\(x(r.p99) + 4)\" y=\"\(y + 15)\" fill=\"#333\">\(format(r.p50)) / \(format(r.p99))</text>\n"
        }
        return s + "</svg>\n"
    }

    private static func format(_ v: Double) -> String { v >= 100 ? String(Int(v.rounded())) : String(format: "%.1f", v) }

    private static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
    }
}
