using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Core.Ir.Text;
using HwGen.Onnx;
using HwGen.Passes;
using HwGen.Rtl.Engines;
using HwGen.Rtl.Emit;
using HwGen.Rtl.Program;
using HwGen.Sim;

namespace HwGen.Cli;

/// <summary>A model compiled down to a design. The compile does not keep the ONNX model, whose initializers (their stored
/// bytes) are the largest thing it loads: <see cref="Model"/> loads it again, once, when asked. <see cref="Graph"/> is the
/// whole model's graph (the golden model runs it); the design is of the layers <see cref="SimLayers"/> only when they are
/// given (<see cref="LayerSubset"/>), else of the whole graph.</summary>
public sealed record Compiled(string ModelPath, Graph Graph, Design Design, int? Batch)
{
    public IReadOnlyList<string>? SimLayers { get; init; }

    OnnxModel? model;
    public OnnxModel Model => model ??= OnnxLoader.Load(ModelPath);
}

/// <summary>The steps behind the CLI commands, usable from tests: compile, golden runs, writing a design directory.</summary>
public static class Flow
{
    /// <summary>Loads, imports and schedules a model; <paramref name="phase"/>, when given, hears where each phase starts
    /// ("load", "passes", "schedule"), for the compile benchmark.
    /// <paramref name="simLayers"/>, when given, narrows the design to those layers (<see cref="LayerSubset"/>), for a
    /// testbench that simulates only them.</summary>
    public static Compiled Compile(string modelPath, HwConfig config, Action<string, Graph>? dump = null, int? batch = null, Action<string>? phase = null,
        IReadOnlyList<string>? simLayers = null)
    {
        if (batch is < 1) throw new HwGenException($"--batch must be at least 1, got {batch}");
        phase?.Invoke("load");
        var graph = Import(modelPath, config, dump, batch, phase);
        // The ONNX model (inline weights: a byte a parameter) is garbage now; a big one is collected here, and its memory given
        // back to the system, not left in the heap while the design is built on top of it (small models skip the full
        // collection, which tests and examples would pay on every compile).
        if (new FileInfo(modelPath).Length >= BigModelBytes) GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        return NamingModel(modelPath, () =>
        {
            var built = simLayers is null ? graph : LayerSubset.Of(graph, simLayers);
            if (simLayers is not null) Verifier.Verify(built, "--sim-layers");
            phase?.Invoke("schedule");
            return new Compiled(modelPath, graph, DesignBuilder.Build(built, config, ModelName(modelPath)), batch) { SimLayers = simLayers };
        });
    }

    /// <summary>Runs <paramref name="body"/>; a <see cref="HwGenException"/> from it that does not name the model yet gets
    /// <paramref name="modelPath"/> in front, so every error of a compile (and of <c>hwgen opt</c>) names its file.</summary>
    internal static T NamingModel<T>(string modelPath, Func<T> body)
    {
        try { return body(); }
        catch (HwGenException e) when (!e.Message.StartsWith(modelPath)) { throw new HwGenException($"{modelPath}: {e.Message}"); }
    }

    /// <summary>Loads and imports a model and runs the passes. The ONNX model is unreachable once this returns, so the
    /// design is built without its initializers in memory.</summary>
    static Graph Import(string modelPath, HwConfig config, Action<string, Graph>? dump, int? batch, Action<string>? phase)
    {
        var model = OnnxLoader.Load(modelPath);
        return NamingModel(modelPath, () =>
        {
            phase?.Invoke("passes");
            return Pipeline.Compile(model, config, dump, batch);
        });
    }

    /// <summary>A model's name: its file name without extension, or its folder's name for a file called model.onnx.</summary>
    public static string ModelName(string modelPath)
    {
        var full = Path.GetFullPath(modelPath);
        var stem = Path.GetFileNameWithoutExtension(full);
        var name = stem == "model" ? Path.GetFileName(Path.GetDirectoryName(full)) ?? stem : stem;
        return new string(name.Select(ch => char.IsAsciiLetterOrDigit(ch) ? ch : '_').ToArray());
    }

    /// <summary>Deterministic stimulus spanning each input's quantization range (a fixed seed, the same on every machine).</summary>
    public static Tensor[] DefaultInputs(Graph g, int seed = 1)
    {
        var rng = new Random(seed);
        return g.Inputs.Select(v =>
        {
            var q = g.UsersOf(v).OfType<Quantize>().FirstOrDefault()?.Quant ?? QuantParams.PerTensor(1.0 / 64, 0);
            double lo = (-128 - q.ZeroPoint) * q.Scale, hi = (127 - q.ZeroPoint) * q.Scale;
            var data = new double[v.Type.Size];
            for (int i = 0; i < data.Length; i++) data[i] = (float)(lo + rng.NextDouble() * (hi - lo));
            return new Tensor(DType.Float32, v.Type.Shape.ToArray(), data);
        }).ToArray();
    }

    /// <summary>The class of each row of <paramref name="logits"/> (rows along its first axis): the index of its largest element, the
    /// first of equal ones.</summary>
    public static int[] Classes(Tensor logits)
    {
        int n = logits.Shape[0], classes = (int)(logits.Size / n);
        var best = new int[n];
        for (int i = 0; i < n; i++)
            for (int j = 1; j < classes; j++)
                if (logits.Data[(long)i * classes + j] > logits.Data[(long)i * classes + best[i]]) best[i] = j;
        return best;
    }

    /// <summary>Test rows the golden model takes at once in <see cref="GoldenOutputs"/>: a compile at a whole test set's batch
    /// could exceed the tasks HwGen schedules (a transformer's rows are its sequences times their tokens).</summary>
    public const int GoldenChunk = 32;

    /// <summary>Model files from this size on (4 MiB: about a 2048² int8 layer) get a full collection after the import.</summary>
    const long BigModelBytes = 1 << 22;

    /// <summary>The golden model's first output for every row of <paramref name="x"/> (rows along its first axis), by the integer
    /// graph compiled at a batch of <see cref="GoldenChunk"/> rows, a chunk at a time; the last chunk is padded with its last
    /// row, whose results are dropped. A model the array cannot compile at that batch (a softmax mask whose rows do not fall
    /// on the array's blocks of rows, say) runs a row at a time.</summary>
    public static Tensor GoldenOutputs(OnnxModel model, HwConfig config, Tensor x, string source)
    {
        int chunk = Math.Min(x.Shape[0], GoldenChunk);
        Graph graph;
        try { graph = Pipeline.Compile(model, config, null, chunk); }
        catch (HwGenException) when (chunk > 1) { graph = Pipeline.Compile(model, config, null, 1); }
        return GoldenOutputs(graph, x, source);
    }

    /// <summary>The golden model's first output for every row of <paramref name="x"/>, by <paramref name="graph"/> (compiled at a batch
    /// of at most x's rows), a batch at a time.</summary>
    public static Tensor GoldenOutputs(Graph graph, Tensor x, string source)
    {
        int n = x.Shape[0], chunk = graph.Inputs[0].Type.Shape[0], per = (int)(x.Size / n);
        double[]? all = null;
        int[] shape = [];
        for (int start = 0; start < n; start += chunk)
        {
            var data = new double[chunk * per];
            for (int i = 0; i < chunk; i++) Array.Copy(x.Data, (long)Math.Min(start + i, n - 1) * per, data, (long)i * per, per);
            var y = HardwareModel.Outputs(graph, CheckInputs(graph, [new Tensor(x.Type, [chunk, .. x.Shape.Skip(1)], data)], source))[0];
            int outPer = (int)(y.Size / chunk);
            all ??= new double[(long)n * outPer];
            shape = [n, .. y.Shape.Skip(1)];
            Array.Copy(y.Data, 0, all, (long)start * outPer, (long)Math.Min(chunk, n - start) * outPer);
        }
        return new Tensor(DType.Float32, shape, all!);
    }

    /// <summary>Checks user inputs against the graph inputs (count and element count) and reshapes them to the graph's shapes.</summary>
    public static Tensor[] CheckInputs(Graph g, IReadOnlyList<Tensor> inputs, string source)
    {
        if (inputs.Count != g.Inputs.Count) throw HwGenException.At(source, null, $"the model takes {g.Inputs.Count} inputs, got {inputs.Count}");
        return inputs.Select((t, i) =>
        {
            var want = g.Inputs[i].Type.Shape.ToArray();
            if (t.Size != ShapeUtil.Size(want))
                throw HwGenException.At(source, null, $"input '{g.Inputs[i].Name}' needs shape {ShapeUtil.Format(want)}, got {ShapeUtil.Format(t.Shape)}");
            return new Tensor(DType.Float32, want, t.Data.Select(x => (double)(float)x).ToArray());
        }).ToArray();
    }

    /// <summary>The hardware model's int8 tensors: quantized inputs as the host writes them, outputs as the RTL must leave them.
    /// The emitted program is run at the instruction level first and must leave exactly these outputs
    /// (<see cref="InstructionSimulator"/>; a difference is a compiler bug).</summary>
    public static (Tensor[] QuantizedInputs, Tensor[] DeviceOutputs, Tensor[] Outputs) Golden(Compiled c, IReadOnlyList<Tensor> inputs)
    {
        var env = HardwareModel.Run(c.Graph, inputs);
        var qin = c.Design.InputTensors.Select(s => env[s.Value]).ToArray();
        var dout = c.Design.OutputTensors.Select(s => env[s.Value]).ToArray();
        // The instruction-level checkpoint: the program itself must compute the golden outputs before any simulator runs.
        NamingModel(c.ModelPath, () => { InstructionSimulator.Check(c.Design, qin, dout); return true; });
        return (qin, dout, c.Graph.Outputs.Select(o => env[o]).ToArray());
    }

    /// <summary>
    /// Writes a complete design directory: rtl/, tb/ with vectors for <paramref name="inputs"/>, run scripts,
    /// manifest.json, report.md, model.hwir, through <see cref="WriteAtomically"/> (which refuses a directory HwGen did
    /// not make, or one that holds the model). <paramref name="phase"/>, when given, hears where each phase starts ("rtl",
    /// "golden", "testbench", "report", "hwir", "commit").
    /// </summary>
    public static void WriteDesignDirectory(Compiled c, string outDir, IReadOnlyList<Tensor> inputs, string modelPath, Action<string>? phase = null) =>
        WriteAtomically(outDir, tmp =>
        {
            phase?.Invoke("rtl");
            RtlEmitter.Write(c.Design, Path.Combine(tmp, "rtl"));
            phase?.Invoke("golden");
            var (qin, dout, _) = Golden(c, inputs);
            phase?.Invoke("testbench");
            Testbench.Write(c.Design, tmp, qin, dout);
            for (int i = 0; i < inputs.Count; i++) Npy.Write(Path.Combine(tmp, "tb", $"input_{i}.npy"), inputs[i]);
            phase?.Invoke("report");
            // Streamed: their size grows with the program (tens of MB at 10^5 tasks).
            using (var f = File.Create(Path.Combine(tmp, "manifest.json"))) Manifest.Write(c, modelPath, f);
            File.WriteAllText(Path.Combine(tmp, "report.md"), Report.Markdown(c));
            using (var w = new StreamWriter(Path.Combine(tmp, "schedule.svg"))) ScheduleChart.WriteSvg(c.Design, w);
            using (var w = new StreamWriter(Path.Combine(tmp, "schedule.html"))) ScheduleChart.WriteHtml(c.Design, w);
            phase?.Invoke("hwir");
            using (var ir = new StreamWriter(Path.Combine(tmp, "model.hwir")))
            using (var consts = new BufferedStream(File.Create(Path.Combine(tmp, Printer.ConstantsFile)), 1 << 16))
                Printer.Write(c.Design.Graph, ir, new Constants.Writer(consts, Printer.ConstantsFile, Printer.DefaultElideAbove));
            phase?.Invoke("commit");
        }, modelPath);

    /// <summary>Written into every directory HwGen makes: its first line, then every file HwGen wrote there.</summary>
    public const string MarkerFile = ".hwgen-output";
    const string MarkerHeader = "HwGen output directory. 'hwgen ... -o' replaces it while it holds only these files (and build/, the simulators' work):";
    /// <summary>Where the run scripts build: not listed in the marker, replaced with the directory.</summary>
    const string BuildDir = "build";

    /// <summary>
    /// Writes a directory through <paramref name="write"/> into a temporary sibling, adds <see cref="MarkerFile"/>, then
    /// moves it into place, so a failure leaves no partial directory. <see cref="CheckOutputDirectory"/> runs before and
    /// again just before the move.
    /// </summary>
    public static void WriteAtomically(string outDir, Action<string> write, params string[] inputs)
    {
        CheckOutputDirectory(outDir, inputs);
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(outDir));
        var parent = Path.GetDirectoryName(full) ?? throw HwGenException.At(outDir, null, "cannot write the output to a file system root");
        Directory.CreateDirectory(parent);
        var stem = Path.Combine(parent, $".{Path.GetFileName(full)}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        string tmp = stem + "-new", old = stem + "-old";
        try
        {
            Directory.CreateDirectory(tmp);
            write(tmp);
            var files = Directory.EnumerateFiles(tmp, "*", SearchOption.AllDirectories)
                .Select(f => Path.GetRelativePath(tmp, f).Replace(Path.DirectorySeparatorChar, '/')).Order(StringComparer.Ordinal);
            File.WriteAllText(Path.Combine(tmp, MarkerFile), string.Join('\n', [MarkerHeader, .. files]) + "\n");
            CheckOutputDirectory(outDir, inputs);
            if (Directory.Exists(full)) Directory.Move(full, old);
            try { Directory.Move(tmp, full); }
            catch when (Directory.Exists(old)) { Directory.Move(old, full); throw; }
        }
        finally
        {
            foreach (var d in new[] { tmp, old })
                if (Directory.Exists(d)) Directory.Delete(d, recursive: true);
        }
    }

    /// <summary>
    /// Throws unless <paramref name="outDir"/> may be (re)written: it does not exist, is empty, or was made by HwGen
    /// (<see cref="MarkerFile"/>) and holds nothing but the files the marker lists and build/. It must not hold any of
    /// <paramref name="inputs"/> (the model) either. The error names the directory and leaves it untouched.
    /// </summary>
    public static void CheckOutputDirectory(string outDir, params string[] inputs)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(outDir));
        HwGenException Refuse(string why, string remedy = "choose another -o, or delete it yourself") =>
            HwGenException.At(outDir, null, $"{why}; HwGen writes only a new or empty directory or one it made itself, so it left it untouched: {remedy}");
        foreach (var input in inputs)
        {
            var rel = Path.GetRelativePath(full, Path.GetFullPath(input));
            if (rel != ".." && !rel.StartsWith(".." + Path.DirectorySeparatorChar) && !Path.IsPathRooted(rel))
                throw Refuse($"the output directory holds the input {input}", "choose another -o");
        }
        if (File.Exists(full)) throw Refuse("it is a file, not a directory");
        if (!Directory.Exists(full)) return;
        var dir = new DirectoryInfo(full);
        if (dir.LinkTarget is not null) throw Refuse("it is a symbolic link");
        if (!dir.EnumerateFileSystemInfos().Any()) return;
        var marker = new FileInfo(Path.Combine(full, MarkerFile));
        var lines = marker.Exists && marker.LinkTarget is null ? File.ReadAllLines(marker.FullName) : [];
        if (lines.Length == 0 || lines[0] != MarkerHeader) throw Refuse($"it is not empty and HwGen did not make it (no {MarkerFile})");
        var listed = lines.Skip(1).ToHashSet(StringComparer.Ordinal);
        var foreign = new List<string>();
        void Walk(DirectoryInfo d)
        {
            foreach (var e in d.EnumerateFileSystemInfos().OrderBy(e => e.Name, StringComparer.Ordinal))
            {
                var rel = Path.GetRelativePath(full, e.FullName).Replace(Path.DirectorySeparatorChar, '/');
                if (rel == BuildDir && e is DirectoryInfo && e.LinkTarget is null) continue;
                if (e.LinkTarget is not null) foreign.Add(rel);
                else if (e is DirectoryInfo sub) Walk(sub);
                else if (rel != MarkerFile && !listed.Contains(rel)) foreign.Add(rel);
            }
        }
        Walk(dir);
        if (foreign.Count > 0)
            throw Refuse($"it holds {foreign.Count} file(s) HwGen did not write ({string.Join(", ", foreign.Take(3))}{(foreign.Count > 3 ? ", ..." : "")})");
    }

    /// <summary>Simulates a design directory: it passes only when every output element its manifest counts was compared and bit-exact.</summary>
    public static SimResult Simulate(ISimulator sim, string dir, bool noStall = false) => Simulation.Run(sim, dir, Manifest.Read(dir).OutputElements, noStall);

    /// <summary>Rewrites only the vectors of an existing design directory for new inputs.</summary>
    public static void WriteVectors(Compiled c, string dir, IReadOnlyList<Tensor> inputs)
    {
        var (qin, dout, _) = Golden(c, inputs);
        Testbench.WriteVectors(c.Design, Path.Combine(dir, "tb"), qin, dout);
    }
}
