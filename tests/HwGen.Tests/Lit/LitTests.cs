using System.Text.RegularExpressions;
using HwGen.Tests.Cli;
using HwGen.Tests.Support;

namespace HwGen.Tests.Lit;

/// <summary>
/// Lit-style tests: each .hwir file under tests/HwGen.Tests/Lit has a '// RUN: hwgen ...' line (%s is the file),
/// '// -----' separators, and per chunk CHECK / CHECK-NEXT / CHECK-NOT lines or one expected-error {{...}}.
/// </summary>
public sealed partial class LitTests
{
    static readonly string Dir = Path.Combine(Repo.Root, "tests", "HwGen.Tests", "Lit");

    public static TheoryData<string> Files() => new(Directory.GetFiles(Dir, "*.hwir").Select(Path.GetFileName).Order()!);

    [Theory]
    [MemberData(nameof(Files))]
    public void Run(string file)
    {
        var path = Path.Combine(Dir, file);
        var text = File.ReadAllText(path);
        var run = RunRe().Match(text);
        Assert.True(run.Success, $"{file} has no RUN line");
        var args = run.Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(a => a == "%s" ? path : a).ToArray();
        var (_, stdout, stderr) = CliRunner.Run(args);
        var inputChunks = HwGen.Cli.Program.SplitInput(text);
        var outputChunks = Regex.Split(stdout + stderr, @"^// -----\r?$", RegexOptions.Multiline);
        Assert.True(inputChunks.Count == outputChunks.Length, $"{file}: {inputChunks.Count} chunks in, {outputChunks.Length} out:\n{stdout}{stderr}");
        for (int i = 0; i < inputChunks.Count; i++) Check(file, i, inputChunks[i], outputChunks[i]);
    }

    static void Check(string file, int chunk, string input, string output)
    {
        string where = $"{file} chunk {chunk}";
        var expectedError = ExpectedErrorRe().Match(input);
        if (expectedError.Success)
        {
            Assert.True(output.TrimStart().StartsWith("error: "), $"{where}: expected an error, got:\n{output}");
            Assert.Contains(expectedError.Groups[1].Value, output);
            return;
        }
        Assert.False(output.TrimStart().StartsWith("error: "), $"{where}: unexpected error:\n{output}");
        var lines = output.Split('\n');
        int pos = 0;            // first line not yet consumed
        int lastMatch = -1;
        var pendingNot = new List<string>();
        foreach (Match d in DirectiveRe().Matches(input))
        {
            string kind = d.Groups[1].Value, pattern = d.Groups[2].Value.Trim();
            switch (kind)
            {
                case "CHECK-NOT":
                    pendingNot.Add(pattern);
                    break;
                case "CHECK-NEXT":
                    Assert.True(lastMatch >= 0 && lastMatch + 1 < lines.Length && lines[lastMatch + 1].Contains(pattern),
                        $"{where}: CHECK-NEXT '{pattern}' is not on the line after the previous match:\n{output}");
                    lastMatch++;
                    pos = lastMatch + 1;
                    break;
                default:
                    int found = Array.FindIndex(lines, pos, l => l.Contains(pattern));
                    Assert.True(found >= 0, $"{where}: CHECK '{pattern}' not found after line {pos}:\n{output}");
                    AssertNone(where, pendingNot, lines[pos..found]);
                    pendingNot.Clear();
                    lastMatch = found;
                    pos = found + 1;
                    break;
            }
        }
        AssertNone(where, pendingNot, lines[pos..]);
    }

    static void AssertNone(string where, List<string> patterns, string[] lines)
    {
        foreach (var p in patterns)
            Assert.False(lines.Any(l => l.Contains(p)), $"{where}: CHECK-NOT '{p}' found");
    }

    [GeneratedRegex(@"^// RUN: hwgen (.*)$", RegexOptions.Multiline)] private static partial Regex RunRe();
    [GeneratedRegex(@"// expected-error \{\{(.*)\}\}")] private static partial Regex ExpectedErrorRe();
    [GeneratedRegex(@"^// (CHECK|CHECK-NEXT|CHECK-NOT): (.*)$", RegexOptions.Multiline)] private static partial Regex DirectiveRe();
}
