using System.Diagnostics;
using System.Text;
using HwGen.Core;
using HwGen.Tests.Fuzz;
using Fuzz = HwGen.Tests.Fuzz.Fuzz;
using HwGen.Tests.Support;

namespace HwGen.FuzzDriver;

/// <summary>What one case came to: "pass" (every command exit 0), "clean" (a clean error), "skip" (nothing to mutate) or a
/// failure <see cref="Class"/> (what went wrong and where, the same for every case of one bug) with its <see cref="Detail"/>.</summary>
sealed record Result(string Id, string Status, string Class, string Detail, double Seconds)
{
    public bool Failed => Status is "fail" or "soft";
    public string Line => string.Join('\t', Id, Status, Class, $"{Seconds:F2}", Detail.Replace('\n', '⏎').Replace('\t', ' '));

    public static Result FromLine(string line)
    {
        var p = line.Split('\t');
        return new Result(p[0], p[1], p[2], p.Length > 4 ? p[4] : "", double.Parse(p[3], System.Globalization.CultureInfo.InvariantCulture));
    }
}

/// <summary>Runs cases in this process: the child's loop (<see cref="Serve"/>) and the one-case mode.</summary>
static class Worker
{
    const string Greedy = """{ "scheduler": "greedy" }""";
    public static double TimeoutSeconds = 20;

    /// <summary>The child's protocol: a case id per line on stdin; "@@START id dir" before and "@@END result" after each.</summary>
    public static int Serve(string? keep)
    {
        var stdout = Console.Out;
        while (Console.In.ReadLine() is { } id)
        {
            if (id.Length == 0) continue;
            var r = Run(Case.Parse(id), verbose: false, keep: keep, started: dir => { stdout.WriteLine($"@@START\t{id}\t{dir}"); stdout.Flush(); });
            stdout.WriteLine("@@END\t" + r.Line);
            stdout.Flush();
        }
        return 0;
    }

    /// <summary>Runs one case on a thread with the main thread's 8 MiB stack (as <c>hwgen</c> runs).</summary>
    public static Result Run(Case c, bool verbose, string? keep, Action<string>? started = null)
    {
        Result? result = null;
        var t = new Thread(() => result = RunHere(c, verbose, keep, started), 8 << 20);
        t.Start();
        t.Join();
        return result!;
    }

    /// <summary>One CLI run of a case: its arguments, the output it names (to be absent after an error), the input files an
    /// error must name (one of), whether it must fail (a mutation that always makes an invalid input) and what else its
    /// error must name (one of; none: nothing more).</summary>
    sealed record Command(string[] Args, string Output, string[] Files, bool MustFail = false, string[]? Places = null, bool SplitInput = false);

    static Result RunHere(Case c, bool verbose, string? keep, Action<string>? started)
    {
        var sw = Stopwatch.StartNew();
        using var dir = new TempDir();
        started?.Invoke(dir.Path);
        List<Command> commands;
        try { commands = Prepare(c, dir); }
        catch (Exception e) { return new Result(c.Id, "error", "driver", $"preparing the case: {e}", sw.Elapsed.TotalSeconds); }
        if (commands.Count == 0) return new Result(c.Id, "skip", "", "", sw.Elapsed.TotalSeconds);
        Result? worst = null;
        bool anyClean = false;
        foreach (var cmd in commands)
        {
            var r = Execute(c, cmd, dir, verbose);
            if (r.Status == "clean") anyClean = true;
            if (r.Failed && (worst is null || (worst.Status == "soft" && r.Status == "fail"))) worst = r;
        }
        var final = worst ?? new Result(c.Id, anyClean ? "clean" : "pass", "", "", 0);
        if (final.Failed && keep is not null) CopyDirectory(dir.Path, Path.Combine(keep, c.Id.Replace('/', '_')));
        return final with { Seconds = sw.Elapsed.TotalSeconds };
    }

    static List<Command> Prepare(Case c, TempDir dir)
    {
        var r = new Random(c.Seed);
        string F(string name) => dir.File(name);
        Command Compile(string[] files, bool mustFail = false, string[]? places = null, bool input = false) =>
            new(["compile", F("model.onnx"), "--config", F("hw.json"), .. input ? new[] { "--input", F("x.npy") } : [], "-o", F("out")], F("out"), files, mustFail, places);
        Command RunCmd(string semantics, string input, string[] files) =>
            new(["run", F("model.onnx"), "--input", F(input), "--output", F("y.npy"), "--semantics", semantics, "--config", F("hw.json")], F("y.npy"), files);
        void DefaultInput(byte[] model)
        {
            var shape = Sources.InputShape(model);
            Npy.Write(F("in.npy"), new Tensor(DType.Float32, shape, Enumerable.Range(0, ShapeUtil.Size(shape)).Select(i => (double)(i % 5) / 4).ToArray()));
        }
        File.WriteAllText(F("hw.json"), Greedy);
        switch (c.Kind)
        {
            case "bytes":
            {
                var src = Sources.Model(c.Source);
                DefaultInput(src);
                File.WriteAllBytes(F("model.onnx"), Fuzz.MutateBytes(src, r));
                return [Compile(["model.onnx"]), RunCmd(c.Seed % 2 == 0 ? "onnx" : "hardware", "in.npy", ["model.onnx", "in.npy"])];
            }
            case "structure":
            {
                var src = Sources.Model(c.Source);
                DefaultInput(src);
                var m = Fuzz.All.Concat(Mutators.Structure).Single(m => m.Name == c.Mutation);
                if (Fuzz.MutateStructure(src, m, r) is not { } mutated) return [];
                File.WriteAllBytes(F("model.onnx"), mutated.Bytes);
                File.WriteAllBytes(F(Mutators.ExternalFile), Enumerable.Range(0, Mutators.ExternalFileBytes).Select(i => (byte)i).ToArray());
                Directory.CreateDirectory(F(Mutators.ExternalDir));
                return [Compile(["model.onnx"], !mutated.MayPass, mutated.Places), RunCmd("onnx", "in.npy", ["model.onnx", "in.npy"])];
            }
            case "npy":
            {
                var src = Sources.Model(c.Source);
                File.WriteAllBytes(F("model.onnx"), src);
                var shape = Sources.InputShape(src);
                File.WriteAllBytes(F("x.npy"), c.Mutation == "tests" ? Fuzz.MutateNpy(shape, r) : Mutators.MutateNpy(shape, r));
                return [Compile(["x.npy"], input: true), RunCmd("onnx", "x.npy", ["x.npy"]), RunCmd("hardware", "x.npy", ["x.npy", "model.onnx"])];
            }
            case "config":
            {
                var src = Sources.Model(c.Source);
                File.WriteAllBytes(F("model.onnx"), src);
                File.WriteAllText(F("hw.json"), c.Mutation == "tests" ? Fuzz.MutateConfig(r) : Mutators.MutateConfig(r, Sources.Layers(src)));
                return [Compile(["hw.json", "model.onnx"])];
            }
            case "hwir":
            {
                var ir = Sources.Ir(c.Source);
                if (c.Source.StartsWith("out:"))
                {
                    // model.hwir with its model.consts: the text, the references' fields or the binary file damaged.
                    var consts = Sources.Consts(c.Source);
                    switch (r.Next(3))
                    {
                        case 0: ir = Mutators.MutateIr(ir, r); break;
                        case 1: ir = Mutators.MutateConstRef(ir, r); break;
                        default: consts = Fuzz.MutateBytes(consts, r); break;
                    }
                    File.WriteAllBytes(F("model.consts"), consts);
                }
                else ir = Mutators.MutateIr(ir, r);
                File.WriteAllText(F("in.hwir"), ir);
                bool split = c.Source.StartsWith("lit:");
                string[] baseArgs = ["opt", F("in.hwir"), .. split ? new[] { "--split-input-file" } : []];
                return
                [
                    new([.. baseArgs], "", ["in.hwir"], SplitInput: split),
                    new([.. baseArgs, "--passes", "all"], "", ["in.hwir"], SplitInput: split),
                ];
            }
            default: throw new ArgumentException($"unknown kind {c.Kind}");
        }
    }

    // ---- running and judging one command ----

    [ThreadStatic] static List<(Exception E, StackTrace Trace)>? thrown;
    static readonly object HookLock = new();
    static bool hooked;

    /// <summary>Records, on the running case's thread, each exception other than <see cref="HwGenException"/> where it is thrown
    /// (the CLI prints only an internal error's type and message): the failure class is its type and innermost HwGen frame.</summary>
    static void Hook()
    {
        lock (HookLock)
        {
            if (hooked) return;
            hooked = true;
            AppDomain.CurrentDomain.FirstChanceException += (_, e) =>
            {
                if (thrown is not { } list || e.Exception is HwGenException) return;
                if (list.Count > 64) list.RemoveAt(0);
                list.Add((e.Exception, new StackTrace(1, false)));
            };
        }
    }

    static string Frame(StackTrace t)
    {
        foreach (var f in t.GetFrames())
        {
            var m = f.GetMethod();
            var type = m?.DeclaringType?.FullName;
            if (type is null || !type.StartsWith("HwGen.") || type.StartsWith("HwGen.FuzzDriver") || type.StartsWith("HwGen.Tests")) continue;
            return $"{type.Split('+')[0]}.{m!.Name}";
        }
        return "?";
    }

    static Result Execute(Case c, Command cmd, TempDir dir, bool verbose)
    {
        Hook();
        thrown = [];
        var o = new StringWriter();
        var e = new StringWriter();
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        var sw = Stopwatch.StartNew();
        int exit = HwGen.Cli.Program.Run(cmd.Args, o, e);
        double seconds = sw.Elapsed.TotalSeconds;
        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
        var caught = thrown;
        thrown = null;
        string stdout = o.ToString(), stderr = e.ToString();
        if (verbose)
        {
            Console.WriteLine($"$ hwgen {string.Join(' ', cmd.Args)}");
            Console.WriteLine($"  exit {exit} in {seconds:F2} s, {allocated >> 20} MiB allocated");
            if (stderr.Length > 0) Console.WriteLine("  stderr: " + Clip(stderr, 2000));
            if (exit != 0 && stdout.Length > 0) Console.WriteLine("  stdout: " + Clip(stdout, 2000));
        }
        string verb = cmd.Args[0];
        Result Fail(string cls, string detail, string status = "fail") => new(c.Id, status, $"{verb}: {cls}", Clip(detail, 600), seconds);
        string firstLine = stderr.Trim().Split('\n')[0];

        if (stderr.Contains("internal error") || exit == 3)
        {
            var type = System.Text.RegularExpressions.Regex.Match(stderr, @"internal error \(([A-Za-z0-9_.]+)\)").Groups[1].Value;
            var at = caught.LastOrDefault(x => x.E.GetType().Name == type);
            if (verbose && at.Trace is not null) Console.WriteLine("  thrown at:\n" + at.Trace);
            return Fail($"internal {type} at {(at.Trace is null ? "?" : Frame(at.Trace))}", firstLine);
        }
        if (exit is not (0 or 1)) return Fail($"exit {exit}", firstLine + " | " + Clip(stdout, 200));
        if ((stderr + stdout).Contains("   at ")) return Fail("stack trace", stderr + stdout);
        if (seconds > TimeoutSeconds) return Fail($"slow (> {TimeoutSeconds} s)", $"{seconds:F1} s; " + firstLine);
        if (exit == 0)
        {
            if (stderr.Length > 0) return Fail("stderr on success", stderr, "soft");
            return cmd.MustFail ? Fail($"accepted ({c.Mutation})", "an invalid input compiled", "soft") : new Result(c.Id, "pass", "", "", seconds);
        }
        // exit 1
        if (Directory.GetDirectories(dir.Path, ".out.tmp-*").Length > 0 || (cmd.Output.Length > 0 && (File.Exists(cmd.Output) || Directory.Exists(cmd.Output))))
            return Fail("output left after an error", firstLine);
        if (cmd.SplitInput && stderr.Length == 0) return new Result(c.Id, "clean", "", "", seconds);   // errors per chunk on stdout
        var lines = stderr.Trim().Split('\n');
        if (lines.Length != 1) return Fail("error of several lines", stderr, "soft");
        if (!lines[0].StartsWith("error: ")) return Fail("error without 'error: '", lines[0], "soft");
        if (!cmd.SplitInput && stdout.Length > 0) return Fail("stdout on error", stdout, "soft");
        if (!cmd.Files.Any(lines[0].Contains)) return Fail($"error names no file ({c.Kind})", lines[0], "soft");
        if (cmd.Places is { Length: > 0 } places && !places.Any(lines[0].Contains))
            return Fail($"error names not what changed ({c.Mutation})", $"{lines[0]} [expected one of {string.Join(", ", places.Take(4))}]", "soft");
        return new Result(c.Id, "clean", "", "", seconds);
    }

    static string Clip(string s, int n) => s.Length <= n ? s : s[..n] + "...";

    static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)), true);
    }
}
