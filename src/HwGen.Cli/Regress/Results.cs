using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using HwGen.Core;

namespace HwGen.Cli.Regress;

/// <summary>Why a case failed: it did not compile or simulate (an error), an output differed from the golden model, or a figure left its tolerance.</summary>
public enum FailureKind { Error, Mismatch, Tolerance }

public sealed record Failure(FailureKind Kind, string Message);

/// <summary>One simulator's verdict on a case.</summary>
public sealed record SimOutcome(string Simulator, bool Passed, long Cycles, string Summary);

/// <summary>The result of one job: its place in the suite (<see cref="Index"/>), figures, the baseline's figures it was compared with
/// (null when the baseline has no such case), the simulators' verdicts, failures, and its wall time (kept apart from the figures).</summary>
public sealed record CaseResult(int Index, string Id, IReadOnlyDictionary<string, double> Figures, IReadOnlyDictionary<string, double>? Baseline,
    IReadOnlyList<SimOutcome> Simulators, IReadOnlyList<Failure> Failures, double WallSeconds)
{
    public bool Passed => Failures.Count == 0;
    public string Case => Id[..Id.IndexOf('/')];
    public string Config => Id[(Id.IndexOf('/') + 1)..];
}

/// <summary>Shard <see cref="Index"/> of <see cref="Count"/> (1-based) takes every Count-th job of the suite, starting at job Index - 1.</summary>
public sealed partial record Shard(int Index, int Count)
{
    public bool Takes(int jobIndex) => jobIndex % Count == Index - 1;
    public override string ToString() => $"{Index}/{Count}";

    public static Shard Parse(string spec)
    {
        var m = ShardRe().Match(spec);
        if (!m.Success || !int.TryParse(m.Groups[1].Value, out var i) || !int.TryParse(m.Groups[2].Value, out var n) || n < 1 || i < 1 || i > n)
            throw new HwGenException($"--shard must be i/n with 1 <= i <= n (e.g. 2/4), got '{spec}'");
        return new Shard(i, n);
    }

    [GeneratedRegex(@"^(\d{1,6})/(\d{1,6})$")] private static partial Regex ShardRe();
}

/// <summary>
/// The figures JSON of a run (or of a shard, or of merged shards): the suite's name, the shard, how many jobs the whole suite has,
/// and each case's result in suite order. Wall times sit in their own field, "wallSeconds", which no comparison reads; without it
/// the file is the same on every run of the same designs, and it serves as a baseline.
/// </summary>
public sealed record RunResults(string Suite, Shard? Shard, int Jobs, IReadOnlyList<CaseResult> Cases, string? BaselineName = null)
{
    const string Generator = "hwgen regress";

    public int Failed => Cases.Count(c => !c.Passed);

    public string Json(bool wallTimes = true)
    {
        static JsonObject Figs(IReadOnlyDictionary<string, double> f) =>
            new(Figures.All.Where(x => f.ContainsKey(x.Key)).Select(x => KeyValuePair.Create(x.Key, (JsonNode?)JsonValue.Create(f[x.Key]))));
        var root = new JsonObject
        {
            ["generator"] = Generator,
            ["suite"] = Suite,
            ["shard"] = Shard?.ToString(),
            ["jobs"] = Jobs,
            ["baselineFile"] = BaselineName,
            ["cases"] = new JsonArray([.. Cases.Select(c => (JsonNode)new JsonObject
            {
                ["index"] = c.Index,
                ["id"] = c.Id,
                ["passed"] = c.Passed,
                ["figures"] = Figs(c.Figures),
                ["baseline"] = c.Baseline is { } b ? Figs(b) : null,
                ["simulators"] = new JsonArray([.. c.Simulators.Select(s => (JsonNode)new JsonObject
                    { ["name"] = s.Simulator, ["passed"] = s.Passed, ["cycles"] = s.Cycles, ["summary"] = s.Summary })]),
                ["failures"] = new JsonArray([.. c.Failures.Select(f => (JsonNode)new JsonObject { ["kind"] = f.Kind.ToString().ToLowerInvariant(), ["message"] = f.Message })]),
            })]),
        };
        // Wall times differ run to run: apart from the figures, and left out of baselines.
        if (wallTimes) root["wallSeconds"] = new JsonObject(Cases.Select(c => KeyValuePair.Create(c.Id, (JsonNode?)JsonValue.Create(Math.Round(c.WallSeconds, 3)))));
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    /// <summary>Reads a figures JSON written by <see cref="Json"/>; anything else is one error naming the file.</summary>
    public static RunResults Read(string path, string what = "figures file")
    {
        if (!File.Exists(path)) throw HwGenException.At(path, null, $"{what} not found");
        try
        {
            var root = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new FormatException("not a JSON object");
            if (root["generator"]?.GetValue<string>() != Generator) throw new FormatException("no \"generator\": \"hwgen regress\"");
            static Dictionary<string, double> Figs(JsonNode? n) =>
                n is JsonObject o ? o.Where(kv => Figures.All.Any(f => f.Key == kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<double>()) : [];
            var wall = root["wallSeconds"] as JsonObject;
            var cases = (root["cases"] as JsonArray ?? throw new FormatException("no \"cases\" array")).Select(c =>
            {
                var id = c!["id"]!.GetValue<string>();
                if (!id.Contains('/')) throw new FormatException($"case id '{id}' is not case/config");
                return new CaseResult(c["index"]!.GetValue<int>(), id, Figs(c["figures"]), c["baseline"] is null ? null : Figs(c["baseline"]),
                    [.. (c["simulators"] as JsonArray ?? []).Select(s => new SimOutcome(s!["name"]!.GetValue<string>(), s["passed"]!.GetValue<bool>(),
                        s["cycles"]!.GetValue<long>(), s["summary"]!.GetValue<string>()))],
                    [.. (c["failures"] as JsonArray ?? []).Select(f => new Failure(Enum.Parse<FailureKind>(f!["kind"]!.GetValue<string>(), ignoreCase: true),
                        f["message"]!.GetValue<string>()))],
                    wall?[id]?.GetValue<double>() ?? 0);
            }).ToList();
            var shard = root["shard"]?.GetValue<string>() is { } s ? Regress.Shard.Parse(s) : null;
            return new RunResults(root["suite"]!.GetValue<string>(), shard, root["jobs"]!.GetValue<int>(), cases, root["baselineFile"]?.GetValue<string>());
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or NullReferenceException or ArgumentException or HwGenException)
        {
            throw HwGenException.At(path, null, $"not a {what} written by 'hwgen regress' ({e.Message.Split('\n')[0].TrimEnd('.')})");
        }
    }

    /// <summary>Joins shards of one suite into one result; every shard 1..n must be there once and every job exactly once.</summary>
    public static RunResults Merge(IReadOnlyList<(RunResults Results, string Path)> shards)
    {
        if (shards.Count == 0) throw new HwGenException("merge needs at least one figures file");
        var (first, firstPath) = shards[0];
        foreach (var (r, path) in shards)
        {
            if (r.Suite != first.Suite) throw HwGenException.At(path, null, $"is from suite '{r.Suite}', but {firstPath} is from suite '{first.Suite}'");
            if (r.Jobs != first.Jobs) throw HwGenException.At(path, null, $"counts {r.Jobs} jobs in the suite, but {firstPath} counts {first.Jobs}: the suite changed between shards");
            if (r.Shard?.Count != first.Shard?.Count) throw HwGenException.At(path, null, $"is shard {r.Shard?.ToString() ?? "(none)"}, but {firstPath} is shard {first.Shard?.ToString() ?? "(none)"}");
        }
        int n = first.Shard?.Count ?? 1;
        var dupShard = shards.GroupBy(s => s.Results.Shard?.Index ?? 1).FirstOrDefault(g => g.Count() > 1);
        if (dupShard is not null) throw HwGenException.At(dupShard.Last().Path, null, $"shard {dupShard.Key}/{n} is given twice");
        var missing = Enumerable.Range(1, n).Where(i => !shards.Any(s => (s.Results.Shard?.Index ?? 1) == i)).ToList();
        if (missing.Count > 0) throw new HwGenException($"merge: shard(s) {string.Join(", ", missing.Select(i => $"{i}/{n}"))} missing");
        var cases = shards.SelectMany(s => s.Results.Cases).OrderBy(c => c.Index).ToList();
        if (cases.GroupBy(c => c.Index).FirstOrDefault(g => g.Count() > 1) is { } dup) throw new HwGenException($"merge: case '{dup.First().Id}' appears in two shards");
        if (cases.Count != first.Jobs) throw new HwGenException($"merge: the shards hold {cases.Count} cases, but the suite has {first.Jobs}");
        return new RunResults(first.Suite, null, first.Jobs, cases, first.BaselineName);
    }
}
