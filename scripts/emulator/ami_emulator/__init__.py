"""ami-factory's AWS emulator: moto's server with the patches that close the moto gaps which matter
to ami-factory, plus a control API under /_ami_factory/. Started by scripts/emulator/moto_server.py.

One module per patched service (the patch's docstring names the AWS rule and where AWS documents it):
  ec2_image_model, ec2_images, ec2_image_attributes, ec2_client_tokens, ec2_ebs, ec2_instances,
  ec2_boot, ssm_commands, ssm_instances, ssm_send_command_size, iam
beside what they share (patching: the guards; ec2_models: helpers over moto's EC2 models), the test
knobs (recorder, ssm_rules, and the rule classes in ec2_boot, ec2_instances, ssm_instances), the
control API (control), the WSGI middleware (middleware) and the entry point (launcher). The twin
(AMI_FACTORY_EMULATOR=twin: volumes and snapshots with real bytes) is the subpackage twin/, whose
patches come on top of these."""
