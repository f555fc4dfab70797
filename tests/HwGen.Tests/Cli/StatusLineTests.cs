using HwGen.Cli;
using HwGen.Tests.Support;

namespace HwGen.Tests.Cli;

/// <summary>The status line is drawn only on a terminal: with any other writer the work runs and nothing is written.</summary>
public sealed class StatusLineTests
{
    [Fact]
    public void Off_a_terminal_it_writes_nothing_and_returns_the_work()
    {
        var o = new StringWriter();
        int ran = 0;
        Assert.Equal(42, StatusLine.Run(o, "working", () => { ran++; return 42; }));
        Assert.Equal(1, ran);
        Assert.Equal("", o.ToString());
    }

    /// <summary>The real CLI in a child process whose output is a pipe (as in CI): no escape codes, the usual lines.</summary>
    [Fact]
    public void A_compile_whose_output_is_a_pipe_prints_no_escape_codes()
    {
        using var dir = new TempDir();
        var (exit, output) = Tool.Run("dotnet", $"\"{typeof(Program).Assembly.Location}\" compile \"{Repo.Example("mlp_digits")}\" -o out", dir.Path);
        Assert.True(exit == 0, output);
        Assert.StartsWith("compiled ", output);
        Assert.DoesNotContain('\u001b', output);
    }
}
