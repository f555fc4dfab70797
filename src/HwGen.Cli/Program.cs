using System.CommandLine;
using System.Diagnostics;
using HwGen.Core;
using HwGen.Onnx;
using HwGen.Core.Ir;
using HwGen.Passes;
using HwGen.Rtl.Engines;
using HwGen.Sim;

namespace HwGen.Cli;

public static class Program
{
    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Runs the CLI with the given writers (tests call this directly).</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand("HwGen: quantized ONNX models to bit-exact, verified Verilog.");
        root.Subcommands.Add(CompileCommand(stdout));
        root.Subcommands.Add(SimulateCommand(stdout));
        root.Subcommands.Add(MergeShardsCommand(stdout));
        root.Subcommands.Add(RunCommand(stdout));
        root.Subcommands.Add(OptCommand(stdout));
        root.Subcommands.Add(BenchCommand(stdout));
        root.Subcommands.Add(UnitCommand.Create(stdout));
        root.Subcommands.Add(Regress.RegressCommand.Create(stdout));
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var e in parsed.Errors) stderr.WriteLine($"error: {e.Message}");
            return 2;
        }
        try
        {
            return parsed.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
        }
        catch (HwGenException e)
        {
            stderr.WriteLine($"error: {e.Message}");
            return 1;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"error: {e.Message}");
            return 1;
        }
        catch (Exception e)
        {
            stderr.WriteLine($"internal error ({e.GetType().Name}): {e.Message}. Please report it with the model.");
            return 3;
        }
    }

    static Option<string?> ConfigOption() => new("--config") { Description = "hardware configuration JSON (arrayRows, arrayCols, scratchpadBytes, portBytes, clockMHz)" };
    static Option<int?> BatchOption() => new("--batch") { Description = "rows to compile for: replaces the leading dimension of every input" };
    static Option<string?> InputOption(string what) => new("--input") { Description = what };
    static HwConfig LoadConfig(string? path) => path is null ? HwConfig.Default : HwConfig.Load(path);

    /// <summary>Reads an --input .npy before the compile (a damaged file fails at once, not after a long compile); its shape
    /// is checked against the compiled graph (<see cref="CheckInput"/>).</summary>
    static (Tensor X, string Path)? ReadInput(string? path) => path is null ? null : (Npy.Read(path), path);

    /// <summary>A comma-separated list of names (null stays null: no list given).</summary>
    static IReadOnlyList<string>? LayerList(string? names) =>
        names?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct().ToList();

    static Tensor[] CheckInput(Graph g, (Tensor X, string Path) input) => Flow.CheckInputs(g, [input.X], input.Path);

    static Command CompileCommand(TextWriter o)
    {
        var model = new Argument<string>("model") { Description = "quantized ONNX model (QDQ or QOperator form)" };
        var output = new Option<string?>("--output", "-o") { Description = "output directory (default rtl-out/<model name>)" };
        var config = ConfigOption();
        var input = InputOption("float32 .npy input for the generated test vectors (default: seeded random over the input's range)");
        var dumpIr = new Option<string?>("--dump-ir") { Description = "write the IR after every pass into this directory" };
        var batch = BatchOption();
        var simLayers = new Option<string?>("--sim-layers") { Description = "comma-separated layer names: the design and its testbench hold only these layers (inputs from the golden model, every output compared)" };
        var shard = new Option<string?>("--shard") { Description = "i/N: write only shard i's part of the off-chip image (and shard.json) into -o; 'hwgen merge-shards' joins the N parts" };
        var cmd = new Command("compile", "Compile a model to Verilog with a testbench, manifest and report.") { model, output, config, input, dumpIr, batch, simLayers, shard };
        cmd.SetAction(pr =>
        {
            var modelPath = pr.GetValue(model)!;
            var cfg = LoadConfig(pr.GetValue(config));
            var dump = pr.GetValue(dumpIr);
            if (dump is not null) Directory.CreateDirectory(dump);
            var part = pr.GetValue(shard) is { } spec ? Regress.Shard.Parse(spec) : null;
            if (part is not null && pr.GetValue(simLayers) is not null) throw new HwGenException("--shard writes a part of the whole model's image; it does not go with --sim-layers");
            var outDir = pr.GetValue(output) ?? Path.Combine("rtl-out", Flow.ModelName(modelPath) + (part is null ? "" : $"-shard{part.Index}of{part.Count}"));
            Flow.CheckOutputDirectory(outDir, modelPath);   // before any work; checked again before the directory is replaced
            var sw = Stopwatch.StartNew();
            var given = ReadInput(pr.GetValue(input));
            var c = StatusLine.Run(o, $"compiling {modelPath} (scheduler budget {cfg.IlpTimeLimitSeconds} s)", () => Flow.Compile(modelPath, cfg, dump is null ? null : (name, g) =>
            {
                using var w = new StreamWriter(Path.Combine(dump, name + ".hwir"));
                Printer.Write(g, w);   // in full, constants included: it parses back
            }, pr.GetValue(batch), simLayers: LayerList(pr.GetValue(simLayers))));
            if (part is not null)
            {
                var (from, to, pieces) = ImageShards.Write(c, part, outDir);
                o.WriteLine($"compiled shard {part.Index}/{part.Count} of {modelPath} -> {outDir} in {sw.Elapsed.TotalMilliseconds:F0} ms: " +
                            $"words [{from}, {to}) of {c.Design.MemoryWords} ({pieces} pieces of the image, {(to - from) * cfg.PortBytes} B)");
                return 0;
            }
            var inputs = given is { } x ? CheckInput(c.Graph, x) : Flow.DefaultInputs(c.Graph);
            Flow.WriteDesignDirectory(c, outDir, inputs, modelPath);
            var d = c.Design;
            // Wall times go to stdout only: the directory's files are the same on every identical compile.
            o.WriteLine($"compiled {modelPath} -> {outDir} in {sw.Elapsed.TotalMilliseconds:F0} ms");
            var engines = d.Engines.Select(e => e.Report(d).Summary).Where(s => s.Length > 0);
            var solving = d.SolveWallSeconds > 0 ? $" ({d.SolveWallSeconds:F1} s solving)" : "";
            o.WriteLine($"  {string.Join(", ", engines)}, schedule {d.Schedule}{solving}, {d.Program.Count} instructions");
            o.WriteLine($"  estimated {d.EstimatedCycles} cycles, {d.OffChipBytesMoved} off-chip bytes moved, scratchpad {d.ScratchpadBytesUsed}/{cfg.ScratchpadBytes} B");
            o.WriteLine($"  simulate: hwgen simulate {outDir}   (or {Path.Combine(outDir, "run_verilator.sh")})");
            return 0;
        });
        return cmd;
    }

    static Command MergeShardsCommand(TextWriter o)
    {
        var dirs = new Argument<string[]>("shards") { Description = "the directories 'hwgen compile --shard i/N' wrote, all N of them", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--output", "-o") { Description = "the image file to write (a new file)", Required = true };
        var cmd = new Command("merge-shards", "Join the image parts of a sharded compile into one off-chip image, byte for byte a single compile's tb/memory.bin.") { dirs, output };
        cmd.SetAction(pr =>
        {
            var given = pr.GetValue(dirs)!;
            long bytes = ImageShards.Merge(given, pr.GetValue(output)!);
            o.WriteLine($"merged {given.Length} shards -> {pr.GetValue(output)} ({bytes} B)");
            return 0;
        });
        return cmd;
    }

    static Command SimulateCommand(TextWriter o)
    {
        var dir = new Argument<string>("dir") { Description = "design directory written by 'hwgen compile'" };
        var sim = new Option<string>("--simulator") { Description = "verilator or icarus", DefaultValueFactory = _ => "verilator" };
        var input = InputOption("float32 .npy input: regenerate the vectors for it with the golden model before simulating");
        var noStall = new Option<bool>("--no-stall") { Description = "memory never stalls (cycle counts then match the report's estimate)" };
        var cmd = new Command("simulate", "Build and run the testbench; exit 0 only when every output is bit-exact.") { dir, sim, input, noStall };
        cmd.SetAction(pr =>
        {
            var d = pr.GetValue(dir)!;
            var simulator = Simulation.Get(pr.GetValue(sim)!);
            if (!Directory.Exists(d)) throw HwGenException.At(d, null, "directory not found");
            var (modelPath, cfg, batch, _, layers) = Manifest.Read(d);
            long estimate = -1;
            if (ReadInput(pr.GetValue(input)) is { } x)
            {
                var c = StatusLine.Run(o, $"compiling {modelPath} for the new input", () => Flow.Compile(modelPath, cfg, batch: batch, simLayers: layers));
                Flow.WriteVectors(c, d, CheckInput(c.Graph, x));
                estimate = c.Design.EstimatedCycles;
            }
            var r = StatusLine.Run(o, $"building and simulating {d} in {pr.GetValue(sim)}", () => Flow.Simulate(simulator, d, pr.GetValue(noStall)));
            o.WriteLine($"{r.Simulator}: {(r.Passed ? "PASS" : "FAIL")}  {r.Summary}");
            o.WriteLine($"  simulated cycles: {r.Cycles}{(estimate >= 0 ? $" (estimate {estimate})" : "")}, wall time {r.WallTime.TotalSeconds:F1} s");
            if (!r.Passed)
            {
                o.WriteLine($"  mismatches: {r.MismatchCount}");
                foreach (var m in r.FirstMismatches) o.WriteLine($"    element {m.Index}: expected {m.Expected}, got {m.Got?.ToString() ?? "x (unknown)"}");
                if (r.FirstMismatches.Count == 0) o.WriteLine(string.Join('\n', r.Log.Split('\n').TakeLast(20)));
            }
            return r.Passed ? 0 : 1;
        });
        return cmd;
    }

    static Command OptCommand(TextWriter o)
    {
        var file = new Argument<string>("file") { Description = "textual HwGen IR (.hwir)" };
        var passes = new Option<string>("--passes") { Description = $"comma-separated passes to run in order, or 'all' ({string.Join(", ", Pipeline.Passes.Select(p => p.Name))})", DefaultValueFactory = _ => "" };
        var split = new Option<bool>("--split-input-file") { Description = "treat each '// -----' chunk as its own input; errors are printed per chunk" };
        var config = ConfigOption();
        var cmd = new Command("opt", "Run passes on textual IR and print the result (the verifier runs after every pass).") { file, passes, split, config };
        cmd.SetAction(pr =>
        {
            var path = pr.GetValue(file)!;
            if (!File.Exists(path)) throw HwGenException.At(path, null, "file not found");
            var cfg = LoadConfig(pr.GetValue(config));
            var names = pr.GetValue(passes)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var chosen = names is ["all"] ? Pipeline.Passes.ToList()
                : names.Select(n => Pipeline.Find(n) ?? throw new HwGenException($"unknown pass '{n}' (known: {string.Join(", ", Pipeline.Passes.Select(p => p.Name))})")).ToList();
            var text = File.ReadAllText(path);
            if (!pr.GetValue(split))
            {
                o.Write(Opt(text, path, chosen, cfg));
                return 0;
            }
            int failures = 0;
            var chunks = SplitInput(text);
            for (int i = 0; i < chunks.Count; i++)
            {
                if (i > 0) o.WriteLine("// -----");
                try { o.Write(Opt(chunks[i], path, chosen, cfg)); }
                catch (HwGenException e) { o.WriteLine($"error: {e.Message}"); failures++; }
            }
            return failures == 0 ? 0 : 1;
        });
        return cmd;
    }

    /// <summary>Splits textual IR at lines that are exactly '// -----', keeping line numbers (earlier chunks become blank lines).</summary>
    public static List<string> SplitInput(string text)
    {
        var lines = text.Split('\n');
        var chunks = new List<string>();
        int start = 0;
        for (int i = 0; i <= lines.Length; i++)
        {
            if (i < lines.Length && lines[i].TrimEnd() != "// -----") continue;
            chunks.Add(string.Concat(Enumerable.Repeat("\n", start)) + string.Join('\n', lines[start..i]));
            start = i + 1;
        }
        return chunks;
    }

    static string Opt(string text, string path, IReadOnlyList<IPass> passes, HwConfig cfg) => Flow.NamingModel(path, () =>
    {
        var sb = new System.Text.StringBuilder();
        foreach (var g in HwGen.Core.Ir.Text.Parser.Parse(text, path))
        {
            Verifier.Verify(g, "parsing");
            Pipeline.Run(g, cfg, passes);
            if (passes.Count > 0) Verifier.Verify(g, passes[^1].Name);
            sb.Append(Printer.Print(g));
        }
        return sb.ToString();
    });

    static Command BenchCommand(TextWriter o)
    {
        var what = new Argument<string>("suite") { Description = "schedule: greedy vs exact vs divide-and-conquer scratchpad scheduling; nnlut: accuracy of the nonlinear units; roofline: cycles against max(MAC bound, memory bound); compile: compile time and peak memory per phase of synthetic MLPs; tlmm: the ternary engine against the dense one; bitmod: BitMoD's quantization error and the digits MLP on it; transformer: where tiny_vit_digits' cycles go; sparse: tiny_vit_digits with pruned attention masks" };
        var quick = new Option<bool>("--quick") { Description = "three small problems (a smoke run); tlmm: one size, no synthesis" };
        var time = new Option<double>("--time") { Description = "deterministic time limit per exact solve", DefaultValueFactory = _ => 10 };
        var output = new Option<string?>("--output", "-o") { Description = "also write the markdown table to this file" };
        var workers = new Option<int>("--workers") { Description = "CP-SAT workers (1 is reproducible)", DefaultValueFactory = _ => 1 };
        var only = new Option<string?>("--graphs") { Description = "only the graphs whose name contains this text" };
        var prove = new Option<double>("--prove") { Description = "deterministic seconds of core-based search on graphs of at most 50 ops the exact model did not prove optimal (0: none)", DefaultValueFactory = _ => 0 };
        var maxParams = new Option<string>("--max-params") { Description = "compile: the largest model, in parameters (e.g. 100M); the sizes are 1M, 4M, 16M, 32M, 64M, 100M, 200M, 400M, 1B below it and it", DefaultValueFactory = _ => "100M" };
        var sizes = new Option<string?>("--sizes") { Description = "compile: these sizes only, comma-separated (e.g. 1M,64M)" };
        var config = ConfigOption();
        var inProcess = new Option<bool>("--in-process") { Description = "compile: run every size in this process (peaks then include the earlier sizes' garbage)" };
        var timeout = new Option<double>("--timeout") { Description = "compile: seconds after which a size's child process is killed", DefaultValueFactory = _ => 600 };
        var externalData = new Option<bool>("--external-data") { Description = "compile: the models keep their weights as ONNX external data (weights.bin beside model.onnx)" };
        var kind = new Option<string>("--kind") { Description = "compile: the weights: " + string.Join(", ", CompileBench.Kinds) + " (see CompileBench.Kinds)", DefaultValueFactory = _ => "int8" };
        var one = new Option<string?>("--one") { Hidden = true };
        var work = new Option<string?>("--work") { Hidden = true };
        var cmd = new Command("bench", "Run a benchmark suite and print a markdown table.") { what, quick, time, output, workers, only, prove, maxParams, sizes, config, inProcess, timeout, externalData, kind, one, work };
        cmd.SetAction(pr =>
        {
            if (pr.GetValue(what) == "compile")
            {
                // The greedy scheduler unless a configuration says otherwise: the exact one's budget is a constant per compile.
                var cfg = pr.GetValue(config) is { } cp ? HwConfig.Load(cp) : HwConfig.Default with { Scheduler = "greedy" };
                var k = CompileBench.Kind(pr.GetValue(kind)!);
                if (pr.GetValue(one) is { } single)
                {
                    o.WriteLine(CompileBench.Serialize(CompileBench.MeasureHere(CompileBench.ParseCount(single), cfg, pr.GetValue(work) ?? throw new HwGenException("--one needs --work"), pr.GetValue(externalData), k)));
                    return 0;
                }
                var list = pr.GetValue(sizes) is { } given ? given.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(CompileBench.ParseCount).ToList()
                    : CompileBench.Sizes(CompileBench.ParseCount(pr.GetValue(maxParams)!));
                var measured = CompileBench.Run(list, cfg, pr.GetValue(config), pr.GetValue(inProcess), TimeSpan.FromSeconds(pr.GetValue(timeout)), o, pr.GetValue(externalData), k);
                var command = "hwgen bench compile " + (pr.GetValue(sizes) is { } sz ? $"--sizes {sz}" : $"--max-params {pr.GetValue(maxParams)}") +
                              (k != "int8" ? $" --kind {k}" : "") + (pr.GetValue(config) is { } c2 ? $" --config {c2}" : "") + (pr.GetValue(externalData) ? " --external-data" : "");
                var table = CompileBench.Markdown(measured, cfg, command, pr.GetValue(externalData), k);
                o.WriteLine(table);
                if (pr.GetValue(output) is { } file) File.WriteAllText(file, table);
                return 0;
            }
            if (pr.GetValue(what) == "nnlut")
            {
                var table = NnLutBench.Document();
                o.WriteLine(table);
                if (pr.GetValue(output) is { } file) File.WriteAllText(file, table);
                return 0;
            }
            if (pr.GetValue(what) == "roofline")
            {
                var roof = RooflineBench.Markdown(RooflineBench.Run(pr.GetValue(quick), o));
                o.WriteLine(roof);
                if (pr.GetValue(output) is { } file) File.WriteAllText(file, roof);
                return 0;
            }
            if (pr.GetValue(what) == "tlmm")
            {
                var tlmm = TlmmBench.Markdown(TlmmBench.Run(pr.GetValue(quick), o));
                o.WriteLine(tlmm);
                if (pr.GetValue(output) is { } file) File.WriteAllText(file, tlmm);
                return 0;
            }
            if (pr.GetValue(what) == "transformer")
            {
                var table = TransformerBench.Markdown(TransformerBench.Run(o));
                o.WriteLine(table);
                if (pr.GetValue(output) is { } file) File.WriteAllText(file, table);
                return 0;
            }
            if (pr.GetValue(what) == "sparse")
            {
                var sparse = SparseBench.Markdown(SparseBench.Run("examples", o));
                o.WriteLine(sparse);
                if (pr.GetValue(output) is { } file) File.WriteAllText(file, sparse);
                return 0;
            }
            if (pr.GetValue(what) == "bitmod")
            {
                var bitmod = BitModBench.Markdown(BitModBench.Run("examples", pr.GetValue(quick), o));
                o.WriteLine(bitmod);
                if (pr.GetValue(output) is { } file) File.WriteAllText(file, bitmod);
                return 0;
            }
            if (pr.GetValue(what) != "schedule") throw new HwGenException($"unknown benchmark '{pr.GetValue(what)}' (known: schedule, nnlut, roofline, compile, tlmm, bitmod, transformer, sparse)");
            var rows = new List<ScheduleBench.Row>();
            foreach (var p in ScheduleBench.Suite(pr.GetValue(quick)).Where(p => pr.GetValue(only) is not { } o || p.Name.Contains(o, StringComparison.Ordinal)))
            {
                var r = ScheduleBench.Run(p, pr.GetValue(time), pr.GetValue(workers), pr.GetValue(prove));
                rows.Add(r);
                o.WriteLine($"  {r.Graph}: greedy {r.Greedy}, exact {r.Ilp?.ToString() ?? r.IlpStatus}, d&c {r.Dnc?.ToString() ?? "-"}");
            }
            var md = ScheduleBench.Markdown(rows, pr.GetValue(time), pr.GetValue(workers));
            o.WriteLine(md);
            if (pr.GetValue(output) is { } path) File.WriteAllText(path, md);
            return 0;
        });
        return cmd;
    }

    static Command RunCommand(TextWriter o)
    {
        var model = new Argument<string>("model") { Description = "quantized ONNX model" };
        var input = new Option<string>("--input") { Description = "float32 .npy input", Required = true };
        var output = new Option<string>("--output") { Description = ".npy file for the output", Required = true };
        var semantics = new Option<string>("--semantics") { Description = "hardware (bit-exact model of the generated RTL) or onnx (ONNX operator semantics)", DefaultValueFactory = _ => "hardware" };
        var config = ConfigOption();
        var cmd = new Command("run", "Run the golden model only (no RTL).") { model, input, output, semantics, config };
        cmd.SetAction(pr =>
        {
            var modelPath = pr.GetValue(model)!;
            var x = Npy.Read(pr.GetValue(input)!);
            Tensor y;
            switch (pr.GetValue(semantics))
            {
                case "hardware":
                    var c = Flow.Compile(modelPath, LoadConfig(pr.GetValue(config)));
                    y = HardwareModel.Outputs(c.Graph, Flow.CheckInputs(c.Graph, [x], pr.GetValue(input)!))[0];
                    break;
                case "onnx":
                    var m = HwGen.Onnx.OnnxLoader.Load(modelPath);
                    y = OnnxEvaluator.Run(m, m.Feed(x, pr.GetValue(input)!)).Values.First();
                    break;
                default:
                    throw new HwGenException($"--semantics must be 'hardware' or 'onnx', got '{pr.GetValue(semantics)}'");
            }
            Npy.Write(pr.GetValue(output)!, y.Type == DType.Float64 ? y.WithType(DType.Float32) : y);
            o.WriteLine($"wrote {pr.GetValue(output)} {ShapeUtil.Format(y.Shape)} ({y.Type.Name()})");
            return 0;
        });
        return cmd;
    }
}
