using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Passes;
using HwGen.Rtl.Engines;
using HwGen.Rtl.Emit;
using HwGen.Rtl.Program;
using HwGen.Sim;

namespace HwGen.Cli;

/// <summary>A model compiled down to a design.</summary>
public sealed record Compiled(OnnxModel Model, Graph Graph, Design Design, int? Batch);

/// <summary>The steps behind the CLI commands, usable from tests: compile, golden runs, writing a design directory.</summary>
public static class Flow
{
    public static Compiled Compile(string modelPath, HwConfig config, Action<string, Graph>? dump = null, int? batch = null)
    {
        if (batch is < 1) throw new HwGenException($"--batch must be at least 1, got {batch}");
        var model = OnnxLoader.Load(modelPath);
        Graph graph;
        try { graph = Pipeline.Compile(model, config, dump, batch); }
        catch (HwGenException e) when (!e.Message.StartsWith(modelPath)) { throw new HwGenException($"{modelPath}: {e.Message}"); }
        var design = DesignBuilder.Build(graph, config, ModelName(modelPath));
        return new Compiled(model, graph, design, batch);
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
        InstructionSimulator.Check(c.Design, qin, dout);
        return (qin, dout, c.Graph.Outputs.Select(o => env[o]).ToArray());
    }

    /// <summary>
    /// Writes a complete design directory: rtl/, tb/ with vectors for <paramref name="inputs"/>, run scripts,
    /// manifest.json, report.md, model.hwir. Written to a temporary sibling first and moved into place, so a
    /// failure leaves no partial directory.
    /// </summary>
    public static void WriteDesignDirectory(Compiled c, string outDir, IReadOnlyList<Tensor> inputs, string modelPath) =>
        WriteAtomically(outDir, tmp =>
        {
            RtlEmitter.Write(c.Design, Path.Combine(tmp, "rtl"));
            var (qin, dout, _) = Golden(c, inputs);
            Testbench.Write(c.Design, tmp, qin, dout);
            for (int i = 0; i < inputs.Count; i++) Npy.Write(Path.Combine(tmp, "tb", $"input_{i}.npy"), inputs[i]);
            File.WriteAllText(Path.Combine(tmp, "manifest.json"), Manifest.Json(c, modelPath));
            File.WriteAllText(Path.Combine(tmp, "report.md"), Report.Markdown(c));
            File.WriteAllText(Path.Combine(tmp, "schedule.svg"), ScheduleChart.Svg(c.Design));
            File.WriteAllText(Path.Combine(tmp, "schedule.html"), ScheduleChart.Html(c.Design));
            File.WriteAllText(Path.Combine(tmp, "model.hwir"), Printer.Print(c.Graph));
        });

    /// <summary>Writes a directory through <paramref name="write"/> into a temporary sibling, then moves it into place
    /// (replacing an old one), so a failure leaves no partial directory.</summary>
    public static void WriteAtomically(string outDir, Action<string> write)
    {
        var full = Path.GetFullPath(outDir);
        var parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        var tmp = Path.Combine(parent, $".{Path.GetFileName(full)}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            Directory.CreateDirectory(tmp);
            write(tmp);
            if (Directory.Exists(full)) Directory.Delete(full, recursive: true);
            Directory.Move(tmp, full);
        }
        finally
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
        }
    }

    /// <summary>Rewrites only the vectors of an existing design directory for new inputs.</summary>
    public static void WriteVectors(Compiled c, string dir, IReadOnlyList<Tensor> inputs)
    {
        var (qin, dout, _) = Golden(c, inputs);
        Testbench.WriteVectors(c.Design, Path.Combine(dir, "tb"), qin, dout, out _);
    }
}
