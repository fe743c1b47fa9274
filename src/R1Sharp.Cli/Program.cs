using System.CommandLine;
using R1Sharp.Cli;
using R1Sharp.Cli.Commands;

R1Sharp.NativeRuntime.Configure(); // before TorchSharp loads libtorch (OpenMP reads its settings once)

// The `r1` command: parsing, progress and printing only; every capability lives in the R1Sharp library.
var root = new RootCommand("R1Sharp: DeepSeek-R1 on .NET — models, generation, training and evaluation");
root.Options.Add(CliCommon.Verbose);
root.Subcommands.Add(InitCommand.Create());
root.Subcommands.Add(GenerateCommand.Create());
root.Subcommands.Add(ChatCommand.Create());
root.Subcommands.Add(TokenizeCommand.Create());
root.Subcommands.Add(EvalCommand.Create());
root.Subcommands.Add(VerifyCommand.Create());
root.Subcommands.Add(ZeroCommand.Create());
root.Subcommands.Add(TrainCommand.Create());
root.Subcommands.Add(SampleCommand.Create());
root.Subcommands.Add(DistillCommand.Create());
root.Subcommands.Add(PipelineCommand.Create());
root.Subcommands.Add(ServeCommand.Create());
root.Subcommands.Add(BoardCommand.Create());
root.Subcommands.Add(ExportCommand.Create());
root.Subcommands.Add(ImportCommand.Create());
root.Subcommands.Add(QuantizeCommand.Create());
root.Subcommands.Add(MergeCommand.Create());
var parse = root.Parse(args);
// A mistyped option is one line naming it (and a "did you mean"), like every other error; --help shows the usage.
if (parse.Action is System.CommandLine.Invocation.ParseErrorAction onError) onError.ShowHelp = false;
return parse.Invoke();
