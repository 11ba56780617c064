print("hubcast")
