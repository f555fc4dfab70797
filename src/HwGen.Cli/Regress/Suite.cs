using System.Text.Json;
using System.Text.RegularExpressions;
using HwGen.Core;
using HwGen.Sim;

namespace HwGen.Cli.Regress;

/// <summary>A regression suite (README, "Regression suites"): its name and cases, every path resolved against the suite file's folder.</summary>
public sealed record Suite(string Name, string Path, IReadOnlyList<SuiteCase> Cases)
{
    /// <summary>Every case with every config, in the suite's order: the units that run, shard and get a verdict.</summary>
    public IReadOnlyList<Job> Jobs { get; } = [.. Cases.SelectMany(c => c.Configs.Select(k => new Job(c, k.Name, k.Config)))];
}

public sealed record SuiteCase(string Name, string Model, IReadOnlyList<NamedConfig> Configs, CaseInputs Inputs, IReadOnlyList<string> Simulators,
    TestSet? Accuracy, bool Resources, IReadOnlyDictionary<string, double> Tolerances);

public sealed record NamedConfig(string Name, HwConfig Config);

/// <summary>The simulated input: an .npy (its leading dimension is the batch) or <see cref="Random"/> rows from <see cref="Flow.DefaultInputs"/> with a seed.</summary>
public sealed record CaseInputs(Tensor? Npy, string? NpyPath, int Random, int Seed)
{
    public int Batch => Npy is { } x ? x.Shape[0] : Random;
}

/// <summary>A labelled test set: inputs with one row per sample, and one class label per row.</summary>
public sealed record TestSet(Tensor X, string XPath, Tensor Labels);

/// <summary>One case under one config; its id, "case/config", names it in every result.</summary>
public sealed record Job(SuiteCase Case, string ConfigName, HwConfig Config)
{
    public string Id => $"{Case.Name}/{ConfigName}";
}

/// <summary>Reads a suite file strictly: unknown keys, wrong types, missing files and bad values are one error naming the file and the key.</summary>
public static partial class SuiteReader
{
    // The keys of each object; README, "Regression suites", documents each (a test checks that it names them all).
    public static readonly string[] SuiteKeys = ["suite", "tolerances", "cases"];
    public static readonly string[] CaseKeys = ["name", "model", "configs", "inputs", "simulators", "accuracy", "resources", "tolerances"];
    public static readonly string[] InputKeys = ["npy", "random", "seed"];
    public static readonly string[] AccuracyKeys = ["x", "labels"];

    public static Suite Load(string path)
    {
        if (!File.Exists(path)) throw HwGenException.At(path, null, "suite file not found");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip }); }
        catch (JsonException e) { throw HwGenException.At(path, null, $"suite is not valid JSON ({e.Message.Split('.')[0]})"); }
        using (doc) return new Reader(path).Suite(doc.RootElement);
    }

    /// <summary>Names used as folder names and in ids: letters, digits, '_', '-', '.'.</summary>
    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")] private static partial Regex NameRe();

    sealed class Reader(string file)
    {
        readonly string folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(file))!;

        HwGenException Error(string where, string why) => HwGenException.At(file, null, $"{where}: {why}");

        /// <summary>An object's properties, refusing keys not in <paramref name="known"/> and repeated keys.</summary>
        Dictionary<string, JsonElement> Object(JsonElement e, string where, string[] known)
        {
            if (e.ValueKind != JsonValueKind.Object) throw Error(where, "must be a JSON object");
            var props = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            foreach (var p in e.EnumerateObject())
            {
                if (!known.Contains(p.Name)) throw Error(where, $"unknown key '{p.Name}' (known: {string.Join(", ", known)})");
                if (!props.TryAdd(p.Name, p.Value)) throw Error(where, $"key '{p.Name}' appears twice");
            }
            return props;
        }

        string Name(JsonElement e, string where) => Name(e.ValueKind == JsonValueKind.String ? e.GetString()! : throw Error(where, "must be a string"), where);

        string Name(string s, string where) =>
            NameRe().IsMatch(s) ? s : throw Error(where, $"'{s}' is not a valid name (letters, digits, '_', '-', '.'; it names a folder)");

        int Int(JsonElement e, string where, int min) =>
            e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var i) && i >= min ? i : throw Error(where, $"must be an integer of at least {min}");

        /// <summary>A file path relative to the suite's folder, which must exist.</summary>
        string File(JsonElement e, string where, string what)
        {
            var s = e.ValueKind == JsonValueKind.String ? e.GetString()! : throw Error(where, "must be a string (a path relative to the suite file)");
            var full = System.IO.Path.GetFullPath(System.IO.Path.Combine(folder, s));
            return System.IO.File.Exists(full) ? full : throw Error(where, $"{what} {s} not found");
        }

        Tensor Npy(string path, string where)
        {
            try { return HwGen.Core.Npy.Read(path); }
            catch (HwGenException e) { throw Error(where, e.Message); }
        }

        public Suite Suite(JsonElement root)
        {
            var p = Object(root, "suite", SuiteKeys);
            if (!p.TryGetValue("suite", out var nameEl)) throw Error("suite", "needs 'suite', the suite's name (baselines are tied to it)");
            var name = Name(nameEl, "suite");
            var defaults = p.TryGetValue("tolerances", out var t) ? Tolerances(t, "tolerances", Figures.DefaultTolerances) : Figures.DefaultTolerances;
            if (!p.TryGetValue("cases", out var cases) || cases.ValueKind != JsonValueKind.Array || cases.GetArrayLength() == 0)
                throw Error("cases", "needs a non-empty array of cases");
            var list = cases.EnumerateArray().Select((c, i) => Case(c, $"cases[{i}]", defaults)).ToList();
            if (list.GroupBy(c => c.Name).FirstOrDefault(g => g.Count() > 1) is { } dup) throw Error("cases", $"two cases are named '{dup.Key}'");
            return new Suite(name, file, list);
        }

        SuiteCase Case(JsonElement e, string where, IReadOnlyDictionary<string, double> defaults)
        {
            var p = Object(e, where, CaseKeys);
            JsonElement Need(string key) => p.TryGetValue(key, out var v) ? v : throw Error(where, $"needs '{key}'");
            var name = Name(Need("name"), $"{where}.name");
            where = $"case '{name}'";
            var model = File(Need("model"), $"{where}.model", "model");
            var configs = p.TryGetValue("configs", out var c) ? Configs(c, $"{where}.configs") : [new NamedConfig("default", HwConfig.Default)];
            var inputs = p.TryGetValue("inputs", out var inp) ? Inputs(inp, $"{where}.inputs") : new CaseInputs(null, null, 1, 1);
            var sims = p.TryGetValue("simulators", out var s) ? Simulators(s, $"{where}.simulators") : ["verilator", "icarus"];
            var acc = p.TryGetValue("accuracy", out var a) ? Accuracy(a, $"{where}.accuracy") : null;
            bool resources = false;
            if (p.TryGetValue("resources", out var r))
                resources = r.ValueKind is JsonValueKind.True or JsonValueKind.False ? r.GetBoolean() : throw Error($"{where}.resources", "must be true or false");
            if (resources && !Simulation.Available("yosys")) throw Error($"{where}.resources", "yosys is not installed (apt-get install yosys)");
            var tol = p.TryGetValue("tolerances", out var t) ? Tolerances(t, $"{where}.tolerances", defaults) : defaults;
            return new SuiteCase(name, model, configs, inputs, sims, acc, resources, tol);
        }

        /// <summary>Named configs, each read by HwConfig's own reader (its one field table).</summary>
        List<NamedConfig> Configs(JsonElement e, string where)
        {
            if (e.ValueKind != JsonValueKind.Object || !e.EnumerateObject().Any()) throw Error(where, "must be a non-empty object of named configs");
            var list = new List<NamedConfig>();
            foreach (var c in e.EnumerateObject())
            {
                var at = $"{where}.{c.Name}";
                Name(c.Name, at);
                if (list.Any(k => k.Name == c.Name)) throw Error(where, $"config '{c.Name}' appears twice");
                list.Add(new NamedConfig(c.Name, HwConfig.FromJson(c.Value, $"{file}: {at}")));
            }
            return list;
        }

        CaseInputs Inputs(JsonElement e, string where)
        {
            var p = Object(e, where, InputKeys);
            if (p.ContainsKey("npy") == p.ContainsKey("random")) throw Error(where, "needs exactly one of 'npy' (a file) and 'random' (a number of rows)");
            if (p.TryGetValue("npy", out var n))
            {
                if (p.ContainsKey("seed")) throw Error(where, "'seed' goes with 'random', not 'npy'");
                var path = File(n, $"{where}.npy", "input");
                var x = Npy(path, $"{where}.npy");
                if (x.Shape.Length < 1 || x.Shape[0] < 1) throw Error($"{where}.npy", "needs a leading (batch) dimension of at least 1");
                return new CaseInputs(x, path, 0, 0);
            }
            return new CaseInputs(null, null, Int(p["random"], $"{where}.random", 1), p.TryGetValue("seed", out var s) ? Int(s, $"{where}.seed", 0) : 1);
        }

        List<string> Simulators(JsonElement e, string where)
        {
            if (e.ValueKind != JsonValueKind.Array || e.GetArrayLength() == 0) throw Error(where, "must be a non-empty array of \"verilator\" and \"icarus\"");
            var list = new List<string>();
            foreach (var s in e.EnumerateArray())
            {
                var name = s.ValueKind == JsonValueKind.String ? s.GetString()! : throw Error(where, "must hold strings");
                ISimulator sim;
                try { sim = Simulation.Get(name); }
                catch (HwGenException ex) { throw Error(where, ex.Message); }
                if (list.Contains(sim.Name)) throw Error(where, $"'{sim.Name}' appears twice");
                if (!Simulation.Available(sim.Tool)) throw Error(where, $"{sim.Tool} is not installed (needed to simulate with {sim.Name})");
                list.Add(sim.Name);
            }
            return list;
        }

        TestSet Accuracy(JsonElement e, string where)
        {
            var p = Object(e, where, AccuracyKeys);
            if (!p.TryGetValue("x", out var xe) || !p.TryGetValue("labels", out var ye)) throw Error(where, "needs 'x' (inputs, one row per sample) and 'labels' (one class per row)");
            var xPath = File(xe, $"{where}.x", "test inputs");
            var x = Npy(xPath, $"{where}.x");
            var labels = Npy(File(ye, $"{where}.labels", "labels"), $"{where}.labels");
            if (x.Shape.Length < 1 || labels.Size != x.Shape[0])
                throw Error(where, $"labels has {labels.Size} values but x has {(x.Shape.Length < 1 ? 0 : x.Shape[0])} rows");
            return new TestSet(x, xPath, labels);
        }

        /// <summary>Tolerances by figure (<see cref="Figures.All"/>), over <paramref name="defaults"/>.</summary>
        Dictionary<string, double> Tolerances(JsonElement e, string where, IReadOnlyDictionary<string, double> defaults)
        {
            var p = Object(e, where, [.. Figures.All.Select(f => f.Key)]);
            var tol = new Dictionary<string, double>(defaults);
            foreach (var (key, v) in p)
                tol[key] = v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out var d) && d >= 0 && double.IsFinite(d) ? d
                    : throw Error($"{where}.{key}", "must be a number of at least 0");
            return tol;
        }
    }
}
