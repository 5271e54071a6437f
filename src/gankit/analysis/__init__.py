"""The DCGAN paper's analysis tools: latent space, representation probes, memorization checks and
feature visualization. Each tool is a library function that writes a picture and a JSON summary;
the `gankit` commands are thin shells over them."""
