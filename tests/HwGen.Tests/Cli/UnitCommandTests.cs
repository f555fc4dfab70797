using HwGen.Tests.Support;

namespace HwGen.Tests.Cli;

/// <summary>'hwgen unit' writes a unit with a passing testbench, and rejects bad requests without leaving a directory.</summary>
public sealed class UnitCommandTests
{
    [Theory]
    [InlineData("tanh", "--entries", "8")]
    [InlineData("layernorm", "--length", "6")]
    public void Writes_a_unit_whose_testbench_passes_in_icarus(string kind, string opt, string val)
    {
        using var dir = new TempDir();
        var (exit, o, e) = CliRunner.Run("unit", kind, opt, val, "-o", dir.File("u"), "--simulate", "icarus");
        Assert.True(exit == 0, o + e);
        Assert.Contains("icarus: PASS", o);
        Assert.True(File.Exists(dir.File($"u/rtl/nnlut_{kind}_{(kind == "tanh" ? 8 : 16)}.v")));
    }

    [Theory]
    [InlineData("cosh", "--entries", "16", "unknown unit 'cosh'")]
    [InlineData("gelu", "--entries", "12", "a table of 12 entries is not supported (8, 16 or 32)")]
    [InlineData("softmax", "--out-scale", "0", "softmax output scale 0 must be positive")]
    public void Bad_requests_are_one_clear_error_and_leave_nothing(string kind, string opt, string val, string message)
    {
        using var dir = new TempDir();
        var (exit, o, e) = CliRunner.Run("unit", kind, opt, val, "-o", dir.File("u"));
        Assert.Equal(1, exit);
        Assert.Contains(message, e);
        Assert.DoesNotContain("   at ", e);
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }
}
