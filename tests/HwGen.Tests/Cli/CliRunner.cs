namespace HwGen.Tests.Cli;

/// <summary>Runs the hwgen CLI in-process and captures what it prints.</summary>
public static class CliRunner
{
    public static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = HwGen.Cli.Program.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }
}
